//! A connector created in the test's own process: for a connector's own tests.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use rekey_api::{Connector, ConnectorError, CreateContext, Metadata, Plugin, Settings};

use crate::Subject;

/// Connector type `P`, created in-process as the host would create it from its
/// library (the same settings, a state directory of the test's choosing).
pub struct InProcess<P> {
    state_dir: PathBuf,
    connector: PhantomData<fn() -> P>,
}

impl<P: Plugin> InProcess<P> {
    /// Creates connectors that keep their state in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        InProcess {
            state_dir: state_dir.into(),
            connector: PhantomData,
        }
    }
}

impl<P: Plugin> Subject for InProcess<P> {
    fn metadata(&self) -> Metadata {
        P::metadata()
    }

    fn create(&self, settings: Settings) -> Result<Arc<dyn Connector>, ConnectorError> {
        let connector = P::create(
            settings,
            CreateContext {
                target: "conformance".into(),
                state_dir: self.state_dir.clone(),
                rate: None,
            },
        )?;
        Ok(Arc::new(connector))
    }
}
