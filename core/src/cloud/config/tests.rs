//! Discovery, parsing and checks against files in a temporary directory.

use super::resolve::keystone_v3;
use super::*;
use crate::cloud::CloudError;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["cwd", "home/.config/openstack", "etc"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Fixture { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        fs::write(&p, text).unwrap();
        p
    }
    fn discovery(&self, vars: &[(&str, &str)]) -> Discovery {
        let mut map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert("HOME".into(), self.path("home").display().to_string());
        Discovery {
            vars: map,
            cwd: self.path("cwd"),
            system_dir: self.path("etc"),
        }
    }
    /// The config loading `cloud` with `vars` set gives; it must load.
    fn loaded(&self, vars: &[(&str, &str)], cloud: Option<&str>) -> CloudConfig {
        self.discovery(vars).load(cloud).unwrap()
    }
    /// Why loading `cloud` with `vars` set fails: the message the operator reads.
    fn refusal(&self, vars: &[(&str, &str)], cloud: Option<&str>) -> String {
        self.discovery(vars).load(cloud).unwrap_err().to_string()
    }
    /// The message of the config error loading `cloud` fails with (any other error fails the test).
    fn config_error(&self, cloud: &str) -> String {
        let err = self.discovery(&[]).load(Some(cloud)).unwrap_err();
        let CloudError::Config(msg) = err else {
            panic!("not a config error")
        };
        msg
    }
}

const CLOUDS: &str = r#"
clouds:
  local:
    auth:
      auth_url: http://127.0.0.1:5000/v3/
      username: admin
      project_name: admin
      user_domain_id: default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
  other:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example:5000
      application_credential_id: abc
      application_credential_secret: s3cret-app
    verify: false
"#;

#[test]
fn clouds_yaml_merged_with_secure_yaml() {
    let f = Fixture::new();
    f.write("home/.config/openstack/clouds.yaml", CLOUDS);
    f.write(
        "etc/secure.yaml",
        "clouds:\n  local:\n    auth:\n      password: hunter2-secret\n",
    );
    let cfg = f.loaded(&[("OS_CLOUD", "local")], None);
    assert_eq!(cfg.name.as_deref(), Some("local"));
    assert_eq!(cfg.auth_url, "http://127.0.0.1:5000/v3");
    assert_eq!(cfg.region.as_deref(), Some("RegionOne"));
    assert_eq!(cfg.interface, Interface::Internal);
    assert!(cfg.verify_tls);
    assert!(cfg.source.contains("secure.yaml"));
    match &cfg.auth {
        Auth::Password {
            user,
            password,
            project,
        } => {
            assert_eq!(
                user,
                &User::Name {
                    name: "admin".into(),
                    domain: Domain::Id("default".into())
                }
            );
            assert_eq!(password.expose(), "hunter2-secret");
            assert_eq!(
                project,
                &ProjectScope::Name {
                    name: "admin".into(),
                    domain: Domain::Name("Default".into())
                }
            );
        }
        other => panic!("unexpected auth {other:?}"),
    }
    // Redaction: nothing that prints the config shows the password.
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("***"));
}

#[test]
fn cli_argument_beats_os_cloud_and_app_credentials_parse() {
    let f = Fixture::new();
    f.write("cwd/clouds.yaml", CLOUDS);
    let cfg = f.loaded(&[("OS_CLOUD", "local")], Some("other"));
    assert!(!cfg.verify_tls);
    assert_eq!(cfg.auth_url, "https://keystone.example:5000/v3");
    assert!(matches!(
        &cfg.auth,
        Auth::ApplicationCredential { id: Some(id), user: None, .. } if id == "abc"
    ));
    assert!(!format!("{cfg:?}").contains("s3cret"));
}

#[test]
fn search_order_env_file_then_cwd_then_home_then_etc() {
    let f = Fixture::new();
    let one =
        "clouds:\n  c:\n    auth: {auth_url: 'http://127.0.0.1:1', token: t, project_id: p1}\n";
    let two =
        "clouds:\n  c:\n    auth: {auth_url: 'http://127.0.0.1:2', token: t, project_id: p2}\n";
    f.write("etc/clouds.yaml", one);
    let d = f.discovery(&[]);
    assert_eq!(d.load(Some("c")).unwrap().auth_url, "http://127.0.0.1:1/v3");
    f.write("home/.config/openstack/clouds.yml", two);
    assert_eq!(d.load(Some("c")).unwrap().auth_url, "http://127.0.0.1:2/v3");
    f.write("cwd/clouds.yaml", one);
    assert_eq!(d.load(Some("c")).unwrap().auth_url, "http://127.0.0.1:1/v3");
    let explicit = f.write("explicit.yaml", two);
    let d = f.discovery(&[("OS_CLIENT_CONFIG_FILE", explicit.to_str().unwrap())]);
    let cfg = d.load(Some("c")).unwrap();
    assert_eq!(cfg.auth_url, "http://127.0.0.1:2/v3");
    assert!(matches!(cfg.auth, Auth::Token { project: ProjectScope::Id(ref p), .. } if p == "p2"));
}

#[test]
fn unknown_cloud_names_file_and_known_clouds() {
    let f = Fixture::new();
    let path = f.write("cwd/clouds.yaml", CLOUDS);
    let msg = f.config_error("nope");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("\"nope\""), "{msg}");
    assert!(msg.contains("local, other"), "{msg}");
}

#[test]
fn broken_yaml_is_a_config_error_without_content() {
    let f = Fixture::new();
    let path = f.write(
        "cwd/clouds.yaml",
        "clouds:\n  local:\n    auth:\n      password: \"hunter2\n    x: [\n",
    );
    let msg = f.config_error("local");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not valid YAML"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    // A wrong type names the key, never the value.
    f.write(
        "cwd/clouds.yaml",
        "clouds:\n  local:\n    auth:\n      auth_url: http://127.0.0.1:5000\n      password: [hunter2]\n",
    );
    let msg = f.refusal(&[], Some("local"));
    assert!(msg.contains("auth.password"), "{msg}");
    assert!(msg.contains("\"local\""), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn endpoint_overrides_replace_the_catalog() {
    let f = Fixture::new();
    f.write(
        "cwd/clouds.yaml",
        "clouds:\n  local:\n    auth:\n      auth_url: http://127.0.0.1:5000\n      username: u\n      password: p\n      project_name: x\n      user_domain_name: Default\n      project_domain_name: Default\n    network_endpoint_override: http://127.0.0.1:19999/\n",
    );
    let cfg = f.loaded(&[], Some("local"));
    assert_eq!(
        cfg.endpoint_overrides,
        vec![(
            crate::cloud::Service::Network,
            "http://127.0.0.1:19999".to_string()
        )]
    );
}

#[test]
fn plain_environment() {
    let f = Fixture::new();
    let d = f.discovery(&[
        ("OS_AUTH_URL", "http://127.0.0.1:5000"),
        ("OS_USERNAME", "demo"),
        ("OS_PASSWORD", "pw-from-env"),
        ("OS_PROJECT_ID", "0123"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_REGION_NAME", "RegionTwo"),
        ("OS_INSECURE", "true"),
        ("OS_CACERT", "/tmp/ca.pem"),
    ]);
    let cfg = d.load(None).unwrap();
    assert_eq!(cfg.name, None);
    assert_eq!(cfg.region.as_deref(), Some("RegionTwo"));
    assert_eq!(cfg.interface, Interface::Public);
    assert!(!cfg.verify_tls);
    assert_eq!(cfg.cacert, Some(PathBuf::from("/tmp/ca.pem")));
    assert!(
        matches!(cfg.auth, Auth::Password { project: ProjectScope::Id(ref p), .. } if p == "0123")
    );
    assert!(!format!("{cfg:?}").contains("pw-from-env"));

    let token = f.loaded(
        &[
            ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
            ("OS_AUTH_TYPE", "v3token"),
            ("OS_TOKEN", "tok-secret"),
            ("OS_PROJECT_NAME", "p"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
        ],
        None,
    );
    assert!(matches!(token.auth, Auth::Token { .. }));
    assert!(!format!("{token:?}").contains("tok-secret"));
}

#[test]
fn missing_pieces_are_explained() {
    let f = Fixture::new();
    let url = ("OS_AUTH_URL", "http://127.0.0.1:5000");
    let user = ("OS_USERNAME", "u");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[url, user], "domain"),
        (
            &[
                url,
                user,
                ("OS_USER_DOMAIN_ID", "default"),
                ("OS_PROJECT_ID", "p"),
            ],
            "password",
        ),
        (&[url, ("OS_AUTH_TYPE", "v3oidcpassword")], "not supported"),
        // Nothing selected at all.
        (&[], "no cloud selected"),
    ];
    for (vars, says) in cases {
        let msg = f.refusal(vars, None);
        assert!(msg.contains(says), "{msg}");
    }
}

#[test]
fn os_password_fills_a_password_clouds_yaml_leaves_out() {
    let f = Fixture::new();
    f.write("cwd/clouds.yaml", CLOUDS);
    let cfg = f.loaded(&[("OS_PASSWORD", "from-env")], Some("local"));
    assert!(
        matches!(cfg.auth, Auth::Password { ref password, .. } if password.expose() == "from-env")
    );
}

#[test]
fn cloud_named_openstack_is_the_default() {
    let f = Fixture::new();
    f.write(
        "cwd/clouds.yaml",
        "clouds:\n  openstack:\n    auth: {auth_url: 'http://127.0.0.1:5000', token: t, project_id: p}\n    insecure: true\n",
    );
    let cfg = f.loaded(&[], None);
    assert_eq!(cfg.name.as_deref(), Some("openstack"));
    assert!(!cfg.verify_tls);
}

#[test]
fn auth_urls_normalise_to_v3() {
    assert_eq!(keystone_v3("http://h:5000").unwrap(), "http://h:5000/v3");
    assert_eq!(
        keystone_v3("http://h/identity/v3/").unwrap(),
        "http://h/identity/v3"
    );
    assert_eq!(keystone_v3("https://h/v2.0").unwrap(), "https://h/v3");
    assert_eq!(keystone_v3("h:5000"), None);
}

#[test]
fn secret_never_prints() {
    let s = Secret::new("pw");
    assert_eq!(format!("{s}"), "***");
    assert_eq!(format!("{s:?}"), "***");
}
