#!/usr/bin/env python3
"""Labelled PII in the world's formats, for measuring the PII guardrail.

Values come from Faker (its per-locale providers: phone numbers, IBANs,
payment cards, e-mail addresses, IP addresses, US SSNs) and labels from
validators nobody here wrote: Google's libphonenumber (Python
`phonenumbers`: a phone number counts when it is a valid number of its
locale's country), python-stdnum (Luhn, IBAN, US SSN), `email-validator`
and Python's `ipaddress`. A value its validator rejects is left out
(Faker makes up many numbers no country assigns). Negatives are what Faker
makes that looks like PII and is not: dates and times in the locales'
formats, ISBNs, EANs, postcodes, prices, UUIDs, hashes, coordinates, bank
sort codes, card expiry dates, versions, other countries' ID numbers.

Each value is put between two of the locale's sentences (Faker's lorem),
as is, at a sentence's end, or in parentheses. Prints one JSON object per
line: {"locale", "text", "spans": [{"entity", "start", "end"}]} with
character offsets; negatives have no spans.

Usage: pii_oracle.py --seed N [--per-locale K]
"""

import argparse
import ipaddress
import json

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from faker import Faker
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.us import ssn as us_ssn

# Locales whose countries the guardrail reads national numbers of by
# default, then others (their numbers count only when written with the
# country code).
DEFAULT_REGION_LOCALES = [
    "en_US", "en_CA", "en_GB", "en_IE", "de_DE", "de_AT", "de_CH", "fr_FR", "nl_NL",
    "nl_BE", "es_ES", "it_IT", "pt_PT", "en_IN", "pt_BR", "es_MX", "en_AU",
]
OTHER_LOCALES = ["pl_PL", "sv_SE", "ja_JP", "tr_TR", "ru_RU", "zh_CN", "ko_KR", "en_NZ", "da_DK", "cs_CZ"]

CARD_TYPES = ["amex", "diners", "discover", "jcb15", "jcb16", "maestro", "mastercard", "visa13", "visa16", "visa19"]
# How people write card numbers: one block, or the network's groups.
CARD_GROUPS = {13: [4, 4, 5], 14: [4, 6, 4], 15: [4, 6, 5], 16: [4, 4, 4, 4], 19: [4, 4, 4, 4, 3], 12: [4, 4, 4]}


def region(locale):
    return locale.split("_")[1]


def valid_phone(value, locale):
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, region(locale)))
    except phonenumbers.NumberParseException:
        return False


def valid_email(value):
    try:
        validate_email(value, check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


def grouped(number, sep):
    sizes = CARD_GROUPS.get(len(number))
    if not sizes:
        return number
    out, at = [], 0
    for n in sizes:
        out.append(number[at:at + n])
        at += n
    return sep.join(out)


def positives(f, locale, k):
    """(entity, value) pairs the validators accept."""
    out = []
    tries = 0
    while sum(1 for e, _ in out if e == "PHONE_NUMBER") < k and tries < 20 * k:
        tries += 1
        v = f.phone_number()
        if valid_phone(v, locale):
            out.append(("PHONE_NUMBER", v))
    for _ in range(k // 2):
        v = f.iban()
        if std_iban.is_valid(v):
            out.append(("IBAN_CODE", v if f.random.random() < 0.5 else std_iban.format(v)))
    for _ in range(k // 2):
        v = f.email()
        if valid_email(v):
            out.append(("EMAIL_ADDRESS", v))
    for _ in range(k // 2):
        try:
            v = f.credit_card_number(f.random.choice(CARD_TYPES))
        except KeyError:
            # The locale has its own networks (Mir in ru_RU, ...).
            v = f.credit_card_number()
        if luhn.is_valid(v):
            r = f.random.random()
            out.append(("CREDIT_CARD", v if r < 0.4 else grouped(v, " " if r < 0.8 else "-")))
    for _ in range(k // 2):
        v = f.random.choice([f.ipv4_public, f.ipv4_private, f.ipv6])()
        a = ipaddress.ip_address(v)
        # Loopback and unspecified addresses identify no one.
        if not (a.is_loopback or a.is_unspecified):
            out.append(("IP_ADDRESS", v))
    if locale == "en_US":
        for _ in range(4 * k):
            v = f.ssn()
            if us_ssn.is_valid(v):
                out.append(("US_SSN", v))
    return out


def negatives(f, locale, k):
    makers = [
        lambda: f.date(pattern=f.random.choice(["%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y"])),
        lambda: f.date_time().strftime("%Y-%m-%d %H:%M:%S"),
        lambda: f.iso8601(),
        lambda: f.time(),
        f.isbn13,
        f.isbn10,
        f.ean13,
        f.ean8,
        f.postcode,
        f.building_number,
        f.pricetag,
        f.uuid4,
        f.sha1,
        f.md5,
        lambda: f"{f.latitude()}, {f.longitude()}",
        f.credit_card_expire,
        f.credit_card_security_code,
        lambda: f.numerify(f.random.choice(["#.#.##", "##.#.####.#", "v#.##.#", "#.##.#-rc.#"])),
        lambda: str(f.random_number(digits=f.random.randint(5, 11))),
        lambda: f.numerify("Order ###-#######"),
        lambda: f.numerify("##:##:##"),
        f.license_plate,
        f.year,
        lambda: f.bothify("??-####-####"),
    ]
    if locale != "en_US":
        # Other countries' personal ID numbers: not a US SSN.
        makers.append(f.ssn)
    out = []
    while len(out) < k:
        v = str(f.random.choice(makers)())
        # Some locales' ID numbers are made as US SSNs: those are one.
        if not us_ssn.is_valid(v):
            out.append(v)
    return out


def placed(f, value):
    """A text with `value` between two sentences; its span in characters."""
    before, after = f.sentence(), f.sentence()
    way = f.random.random()
    if way < 0.5:
        head = before + " "
        text = head + value + " " + after
    elif way < 0.75:
        head = before + " " + after.rstrip(".") + " "
        text = head + value + "."
    else:
        head = before + " ("
        text = head + value + ") " + after
    return text, len(head), len(head) + len(value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--per-locale", type=int, default=24)
    args = ap.parse_args()
    for locale in DEFAULT_REGION_LOCALES + OTHER_LOCALES:
        f = Faker(locale)
        f.seed_instance(f"{args.seed}:{locale}")
        for entity, value in positives(f, locale, args.per_locale):
            text, start, end = placed(f, value)
            print(json.dumps({"locale": locale, "text": text, "spans": [{"entity": entity, "start": start, "end": end}]}, ensure_ascii=False))
        for value in negatives(f, locale, args.per_locale):
            text, _, _ = placed(f, str(value))
            print(json.dumps({"locale": locale, "text": text, "spans": []}, ensure_ascii=False))


if __name__ == "__main__":
    main()
