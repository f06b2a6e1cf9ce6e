//! What identity and access policies add to a request before the sandbox:
//! verifying an edgefn access token (HS256), reading the caller's groups and
//! metadata (from the profile cache, as on every request after the first in
//! its TTL) and deciding the function's policy. Target: p50 ≤ 20 µs.
//! Run: `cargo bench -p edgefn-benches --bench access`

use criterion::{Criterion, criterion_group, criterion_main};
use edgefn_host::access::{Decision, Policy};
use edgefn_host::admin_keys::AdminKeys;
use edgefn_host::identity::{Identity, IdentityConfig, NewUser, SignInAttempt};
use edgefn_migrations::{Migrator, MigratorTrait};
use serde_json::json;
use std::time::Duration;

fn access_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("edgefn-access-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (identity, header) = runtime.block_on(async {
        let db = sea_orm::Database::connect(format!("sqlite://{}?mode=rwc", dir.join("bench.db").display())).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        let config = IdentityConfig {
            issuer: "edgefn".into(),
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(3600),
            profile_ttl: Duration::from_secs(30),
            signup_enabled: false,
            max_sign_in_failures: 5,
            sign_in_window: Duration::from_secs(900),
            external: None,
        };
        let keys = vec![("bench".to_owned(), zeroize::Zeroizing::new([7u8; 32]))];
        let identity = Identity::new(db.clone(), config, keys, AdminKeys::new(db)).unwrap();
        let user = NewUser {
            email: "bench@example.com".into(),
            password: "benchmark password".into(),
            groups: vec!["admin".into(), "ops".into()],
            metadata: json!({"department": "engineering", "plan": "pro", "seats": 12}).as_object().unwrap().clone(),
            disabled: false,
        };
        identity.create_user(user).await.unwrap();
        let attempt = SignInAttempt { email: "bench@example.com", password: "benchmark password", client: None };
        let session = identity.sign_in(attempt).await.unwrap();
        (identity, format!("Bearer {}", session.access_token))
    });

    let policies = [
        ("authenticated", Policy::Authenticated),
        ("group", Policy::parse(&json!({"type": "group", "groups": ["admin"]})).unwrap()),
        (
            "metadata",
            Policy::parse(&json!({"type": "metadata", "all": [
                {"key": "department", "equals": "engineering"},
                {"key": "plan", "in": ["pro", "team"]},
                {"key": "seats", "gte": 5}
            ]}))
            .unwrap(),
        ),
    ];
    let mut group = c.benchmark_group("access");
    for (name, policy) in &policies {
        group.bench_function(format!("token_and_{name}_policy"), |b| {
            b.to_async(&runtime).iter(|| async {
                let caller = identity.authenticate(Some(&header)).await.unwrap();
                assert_eq!(policy.decide(caller.as_ref()), Decision::Allow);
            })
        });
    }
    group.bench_function("anonymous_public", |b| {
        b.to_async(&runtime).iter(|| async {
            let caller = identity.authenticate(None).await.unwrap();
            assert_eq!(Policy::Public.decide(caller.as_ref()), Decision::Allow);
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, access_check);
criterion_main!(benches);
