//! The README's shell sessions (```console blocks), run as shown: each
//! `$ ` line is a command, run by bash in order in an empty database
//! (DATABASE_URL) with this build's pgprompt first on PATH; the lines
//! after it, up to the next command, are what it must print. A comment
//! `# exit N` at the end of a command is the exit status it must end with
//! (0 otherwise).

use std::process::Command;

use pgprompt_tests::TestDb;

struct Step {
    line: usize,
    command: String,
    exit: i32,
    expected: String,
}

fn sessions(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut inside = false;
    for (n, line) in readme.lines().enumerate() {
        if !inside {
            inside = line.trim_end() == "```console";
            continue;
        }
        if line.starts_with("```") {
            inside = false;
        } else if let Some(command) = line.strip_prefix("$ ") {
            let (command, exit) = match command.split_once("    # exit ") {
                Some((c, rest)) => (c, rest.split(|ch: char| !ch.is_ascii_digit()).next().unwrap().parse().unwrap()),
                None => (command, 0),
            };
            steps.push(Step { line: n + 1, command: command.trim_end().to_string(), exit, expected: String::new() });
        } else {
            let step = steps.last_mut().expect("a console block starts with a command");
            step.expected.push_str(line);
            step.expected.push('\n');
        }
    }
    steps
}

#[test]
fn every_shell_session_of_the_readme_runs_as_shown() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let steps = sessions(&readme);
    assert!(steps.len() >= 8, "{} commands", steps.len());
    let db = TestDb::new();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pgprompt")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let dir = std::env::temp_dir().join(format!("{}-readme", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for step in &steps {
        assert!(step.command.starts_with("pgprompt "), "README line {}: only pgprompt commands run here", step.line);
        let out = Command::new("bash")
            .args(["-c", &step.command])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("DATABASE_URL", db.url())
            .env_remove("PAGER")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got: String = stdout.lines().map(|l| l.trim_end().to_string() + "\n").collect();
        if out.status.code() != Some(step.exit) || got != step.expected {
            failures.push(format!(
                "README line {}: {}\n  exit {:?} (expected {})\n  printed:\n{got}  expected:\n{}  stderr: {}",
                step.line,
                step.command,
                out.status.code(),
                step.exit,
                step.expected,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
