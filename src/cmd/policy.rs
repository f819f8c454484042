//! `mfa-audit policy list | show | check | attributes`.

use super::AppError;
use crate::cli::PolicyCommand;
use mfa_audit::policy;

pub fn run(cmd: &PolicyCommand) -> Result<(), AppError> {
    match cmd {
        PolicyCommand::List => {
            for (name, _) in policy::SHIPPED {
                let p = policy::load(name)?;
                let default = if name == policy::DEFAULT_POLICY {
                    " (default)"
                } else {
                    ""
                };
                println!("{name}{default}: {}, {} rules", p.title, p.rules.len());
                for s in &p.surfaces {
                    let from = match (s.enforced_from, s.readiness) {
                        (Some(d), _) => format!("enforced from {}", d.day()),
                        (None, true) => "never enforced (readiness only)".into(),
                        (None, false) => "detections (counts toward no readiness)".into(),
                    };
                    let postpone = s
                        .postpone_until
                        .map(|d| format!("; a tenant may postpone it to {}", d.day()))
                        .unwrap_or_default();
                    println!("    {:<20} {from}{postpone}", s.name);
                }
            }
            Ok(())
        }
        PolicyCommand::Check { file } => {
            let p = policy::load(file)?;
            println!(
                "{file}: valid policy `{}`: {} rules, {} protected pages, {} exception reasons",
                p.version,
                p.rules.len(),
                p.pages.len(),
                p.exception_reasons.len()
            );
            Ok(())
        }
        PolicyCommand::Attributes => {
            print!("{}", policy::attr::table());
            Ok(())
        }
        PolicyCommand::Show { name, effective } => {
            let shipped = policy::SHIPPED.iter().find(|(n, _)| n == name);
            match shipped {
                Some((_, text)) if !effective => print!("{text}"),
                _ => print!("{}", policy::load::effective(name)?),
            }
            Ok(())
        }
    }
}
