//! `edgefn:function/secrets`: the secrets granted to the running function.
//!
//! Invariant: a function sees only the names its deployment grants. Storage
//! and encryption of values arrive with the secrets manager; until then no
//! deployment can grant anything, so every read names the missing grant.

use edgefn_world::secrets::{Host, SecretError};

/// The secrets one invocation may read.
#[derive(Debug, Default)]
pub struct GrantedSecrets {
    granted: Vec<(String, String)>,
}

impl Host for GrantedSecrets {
    fn granted(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.granted.iter().map(|(name, _)| name.clone()).collect())
    }

    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, SecretError>> {
        Ok(match self.granted.iter().find(|(granted, _)| *granted == name) {
            Some((_, value)) => Ok(value.clone()),
            None => Err(SecretError::NotGranted(format!(
                "this function is not granted the secret {name:?}; add it to the deployment's secret grants"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ungranted_name_is_an_error_that_names_the_grant() {
        let mut secrets = GrantedSecrets::default();
        assert!(secrets.granted().unwrap().is_empty());
        let Err(SecretError::NotGranted(message)) = secrets.get("OPENAI_API_KEY".into()).unwrap() else {
            panic!("expected not-granted");
        };
        assert!(message.contains("\"OPENAI_API_KEY\""));
    }
}
