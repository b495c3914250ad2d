//! A `Connector` that hands out in-process fakes instead of logging in to
//! real clouds (tests and the `fleet_fake` benchmark).

use super::{Connected, Connector};
use crate::cloud::CloudError;
use crate::fleet::CloudKey;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// In-process clouds for tests and benchmarks: clouds.yaml entry name →
/// (fake cloud, project). Counts logins; entries in `down` refuse them.
pub struct FakeConnector<'a> {
    pub entries: HashMap<String, (&'a crate::cloud::FakeCloud, String)>,
    pub logins: Cell<usize>,
    pub down: RefCell<std::collections::HashSet<String>>,
}

impl<'a> FakeConnector<'a> {
    pub fn new(
        entries: impl IntoIterator<Item = (String, (&'a crate::cloud::FakeCloud, String))>,
    ) -> Self {
        FakeConnector {
            entries: entries.into_iter().collect(),
            logins: Cell::new(0),
            down: RefCell::default(),
        }
    }
}

impl<'a> Connector for FakeConnector<'a> {
    type Cloud = crate::cloud::fake::ProjectView<'a>;
    async fn connect(&self, key: &CloudKey) -> Result<Connected<Self::Cloud>, CloudError> {
        let name = key.name.clone().unwrap_or_default();
        if self.down.borrow().contains(&name) {
            return Err(CloudError::Unavailable(format!(
                "POST http://{name}/v3/auth/tokens after 5 attempts: connection refused"
            )));
        }
        let (fake, project) = self
            .entries
            .get(&name)
            .ok_or_else(|| CloudError::Config(format!("no cloud named \"{name}\"")))?;
        self.logins.set(self.logins.get() + 1);
        Ok(Connected {
            cloud: fake.as_project(project),
            label: format!("cloud \"{name}\""),
            neutron_auth: Vec::new(),
        })
    }
}
