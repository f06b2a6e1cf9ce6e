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
    /// The execution span each read's span goes under, when tracing.
    trace: Option<opentelemetry::Context>,
}

impl GrantedSecrets {
    /// The decrypted values granted to this invocation.
    pub fn new(granted: GrantedValues) -> Self {
        GrantedSecrets { granted, trace: None }
    }

    /// Puts each read's span (the secret's name, never its value) under `cx`.
    pub fn set_trace(&mut self, cx: opentelemetry::Context) {
        self.trace = Some(cx);
    }

    fn trace_read(&self, name: &str, outcome: Result<(), &'static str>) {
        use opentelemetry::trace::{Span, Status, Tracer};
        let Some(cx) = &self.trace else { return };
        let tracer = crate::telemetry::traces::tracer();
        let mut span = tracer
            .span_builder("secret read")
            .with_attributes([opentelemetry::KeyValue::new("edgefn.secret.name", name.to_owned())])
            .start_with_context(tracer, cx);
        if let Err(kind) = outcome {
            span.set_attribute(opentelemetry::KeyValue::new("error.type", kind));
            span.set_status(Status::error(kind));
        }
        span.end();
    }
}

impl Host for GrantedSecrets {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, SecretError>> {
        let value = self.read(&name);
        self.trace_read(&name, value.as_ref().map(|_| ()).map_err(|e| match e {
            SecretError::NotGranted(_) => "not-granted",
            SecretError::Unavailable(_) => "unavailable",
        }));
        Ok(value)
    }
}

impl GrantedSecrets {
    fn read(&self, name: &str) -> Result<String, SecretError> {
        match self.granted.0.iter().find(|(granted, _)| *granted == name) {
            Some((_, Some(value))) => Ok(value.to_string()),
            Some((_, None)) => Err(SecretError::Unavailable(format!(
                "the secret {name} is granted to this function but has no value; set it with PUT /admin/v1/secrets/{name}"
            ))),
            None => Err(SecretError::NotGranted(format!(
                "this function is not granted the secret {name}; add it to the deployment's secret grants"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn reads_granted_values_and_names_what_is_missing() {
        let values = GrantedValues(vec![
            ("OPENAI_API_KEY".into(), Some(Zeroizing::new("sk".into()))),
            ("DELETED".into(), None),
        ]);
        assert_eq!(values.names(), ["OPENAI_API_KEY", "DELETED"]);
        let mut secrets = GrantedSecrets::new(values);
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
