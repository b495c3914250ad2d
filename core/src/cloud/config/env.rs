//! The `OS_*` environment variables: a whole cloud when no cloud is named,
//! and the secrets a clouds.yaml leaves out.

use super::model::CloudConfig;
use super::resolve::{Ctx, Raw, parse_bool};
use super::secret::Secret;
use crate::cloud::CloudError;

/// The cloud the plain `OS_*` variables describe. `var` gives a variable's
/// non-empty value.
pub(super) fn load<'a>(var: impl Fn(&str) -> Option<&'a str>) -> Result<CloudConfig, CloudError> {
    let v = |k: &str| var(k).map(str::to_owned);
    let raw =
        Raw {
            auth_type: v("OS_AUTH_TYPE"),
            auth_url: v("OS_AUTH_URL"),
            username: v("OS_USERNAME"),
            user_id: v("OS_USER_ID"),
            password: v("OS_PASSWORD").map(Secret::new),
            project_name: v("OS_PROJECT_NAME").or_else(|| v("OS_TENANT_NAME")),
            project_id: v("OS_PROJECT_ID").or_else(|| v("OS_TENANT_ID")),
            user_domain_name: v("OS_USER_DOMAIN_NAME"),
            user_domain_id: v("OS_USER_DOMAIN_ID"),
            project_domain_name: v("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: v("OS_PROJECT_DOMAIN_ID"),
            domain_name: v("OS_DOMAIN_NAME"),
            domain_id: v("OS_DOMAIN_ID"),
            default_domain: v("OS_DEFAULT_DOMAIN"),
            app_id: v("OS_APPLICATION_CREDENTIAL_ID"),
            app_name: v("OS_APPLICATION_CREDENTIAL_NAME"),
            app_secret: v("OS_APPLICATION_CREDENTIAL_SECRET").map(Secret::new),
            token: v("OS_TOKEN").map(Secret::new),
            region: v("OS_REGION_NAME"),
            interface: v("OS_INTERFACE").or_else(|| v("OS_ENDPOINT_TYPE")),
            cacert: v("OS_CACERT"),
            network_endpoint_override: None,
            load_balancer_endpoint_override: None,
            verify: match v("OS_INSECURE") {
                Some(text) => Some(!parse_bool(&text).ok_or_else(|| {
                    CloudError::Config("OS_INSECURE must be true or false".into())
                })?),
                None => None,
            },
        };
    let ctx = Ctx {
        file: "environment".into(),
        cloud: "OS_* variables".into(),
    };
    raw.resolve(None, "OS_* environment variables".into(), &ctx)
}

/// The CLI lets OS_PASSWORD supply a password a clouds.yaml leaves out (and
/// OS_APPLICATION_CREDENTIAL_SECRET a secret); only missing secrets are
/// filled, nothing is overridden.
pub(super) fn fill_missing_secrets<'a>(raw: &mut Raw, var: impl Fn(&str) -> Option<&'a str>) {
    if raw.password.is_none() {
        raw.password = var("OS_PASSWORD").map(Secret::new);
    }
    if raw.app_secret.is_none() {
        raw.app_secret = var("OS_APPLICATION_CREDENTIAL_SECRET").map(Secret::new);
    }
}
