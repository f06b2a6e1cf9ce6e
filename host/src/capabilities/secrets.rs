//! `edgefn:function/secrets`: the secrets granted to the running function.
//!
//! Invariant: a function sees only the names its grants list, with the values
//! decrypted for this invocation (see `crate::secrets`); an ungranted name is
//! an error that names the missing grant.

use crate::secrets::GrantedValues;
use edgefn_world::secrets::{Host, SecretError};

/// The secrets one invocation may read.
#[derive(Debug, Default)]
pub struct GrantedSecrets {
    granted: GrantedValues,
}

impl GrantedSecrets {
    /// The decrypted values granted to this invocation.
    pub fn new(granted: GrantedValues) -> Self {
        GrantedSecrets { granted }
    }
}

impl Host for GrantedSecrets {
    fn granted(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.granted.0.iter().map(|(name, _)| name.clone()).collect())
    }

    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, SecretError>> {
        Ok(match self.granted.0.iter().find(|(granted, _)| *granted == name) {
            Some((_, Some(value))) => Ok(value.to_string()),
            Some((_, None)) => Err(SecretError::Unavailable(format!(
                "the secret {name} is granted to this function but has no value; set it with PUT /admin/v1/secrets/{name}"
            ))),
            None => Err(SecretError::NotGranted(format!(
                "this function is not granted the secret {name}; add it to the deployment's secret grants"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn reads_granted_values_and_names_what_is_missing() {
        let mut secrets = GrantedSecrets::new(GrantedValues(vec![
            ("OPENAI_API_KEY".into(), Some(Zeroizing::new("sk".into()))),
            ("DELETED".into(), None),
        ]));
        assert_eq!(secrets.granted().unwrap(), ["OPENAI_API_KEY", "DELETED"]);
        assert_eq!(secrets.get("OPENAI_API_KEY".into()).unwrap().unwrap(), "sk");
        let Err(SecretError::Unavailable(message)) = secrets.get("DELETED".into()).unwrap() else {
            panic!("expected unavailable");
        };
        assert!(message.contains("DELETED"));
        let Err(SecretError::NotGranted(message)) = secrets.get("STRIPE_KEY".into()).unwrap() else {
            panic!("expected not-granted");
        };
        assert!(message.contains("STRIPE_KEY"));
    }
}
