//! Colour for people: ANSI escapes when writing to a terminal, never when
//! NO_COLOR is set (https://no-color.org) or the terminal is "dumb", and
//! never into a pipe or a file, where programs read the output.

/// Whether to colour, and the escapes that do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    on: bool,
}

impl Style {
    /// No colour.
    pub fn plain() -> Style {
        Style { on: false }
    }

    /// Colour when the output is a terminal and the environment allows it.
    pub fn for_output(is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Style { on: is_terminal && !no_color && !dumb }
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn cyan(&self, text: &str) -> String {
        self.paint("36", text)
    }
}
