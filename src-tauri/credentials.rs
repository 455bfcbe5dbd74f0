//! `watchfloor credentials set-password|import-key|delete|status`: the broker's secrets in the
//! OS keyring (`watchfloor_core::credentials`), for the broker the settings name. Secrets are
//! read from a terminal without echo, or from standard input, and never printed.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use watchfloor_core::credentials::{SecretKey, SecretStore};
use watchfloor_core::settings::BrokerTarget;
use watchfloor_core::Settings;

use crate::cli::CredentialsCommand;

pub fn run(settings: &Settings, command: &CredentialsCommand, store: &dyn SecretStore) -> ExitCode {
    match try_run(settings, command, store) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("watchfloor: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("watchfloor: {e:#}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Runtime(e.into())
    }
}

fn try_run(
    settings: &Settings,
    command: &CredentialsCommand,
    store: &dyn SecretStore,
) -> Result<(), Failure> {
    let BrokerTarget::External(url) = &settings.broker else {
        return Err(Failure::Usage(
            "the embedded broker takes no credentials: name the broker with --broker or `broker` in the config file"
                .into(),
        ));
    };
    let broker = format!("{}:{}", url.host, url.port);
    let configured_user = settings.mqtt.credentials.as_ref().map(|c| c.0.clone());
    let username = |given: &Option<String>| -> Result<String, Failure> {
        given.clone().or(configured_user.clone()).ok_or_else(|| {
            Failure::Usage("give --username, or set mqtt.username in the config file".into())
        })
    };
    match command {
        CredentialsCommand::SetPassword { username: given } => {
            let user = username(given)?;
            let key = SecretKey::password(&broker, &user);
            let password = read_secret(&format!("Password of {user} at {broker}: "))?;
            if password.is_empty() {
                return Err(Failure::Usage(
                    "the password is empty; nothing stored".into(),
                ));
            }
            store.set(&key, password.as_bytes())?;
            println!("stored {key} in the OS keyring");
        }
        CredentialsCommand::ImportKey { file } => {
            let pem = std::fs::read(file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            if !String::from_utf8_lossy(&pem).contains("PRIVATE KEY-----") {
                return Err(Failure::Usage(format!(
                    "{} is not a PEM file with a PRIVATE KEY block",
                    file.display()
                )));
            }
            let key = SecretKey::client_key(&broker);
            store.set(&key, &pem)?;
            println!(
                "stored {key} in the OS keyring; remove mqtt.client_key from the config (and the file, if nothing else needs it)"
            );
        }
        CredentialsCommand::Delete { username: given } => {
            let mut removed = Vec::new();
            if let Ok(user) = username(given) {
                let key = SecretKey::password(&broker, &user);
                if store.delete(&key)? {
                    removed.push(key.to_string());
                }
            }
            let key = SecretKey::client_key(&broker);
            if store.delete(&key)? {
                removed.push(key.to_string());
            }
            if removed.is_empty() {
                println!("the OS keyring held nothing for {broker}");
            } else {
                println!("removed {}", removed.join(" and "));
            }
        }
        CredentialsCommand::Status { username: given } => {
            if let Ok(user) = username(given) {
                let key = SecretKey::password(&broker, &user);
                let held = store.get(&key)?.is_some();
                println!("{key}: {}", if held { "stored" } else { "not stored" });
            }
            let key = SecretKey::client_key(&broker);
            let held = store.get(&key)?.is_some();
            println!("{key}: {}", if held { "stored" } else { "not stored" });
        }
    }
    Ok(())
}

/// A secret from the terminal (no echo), or the first line of standard input.
fn read_secret(prompt: &str) -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        return Ok(rpassword::prompt_password(prompt)?);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
