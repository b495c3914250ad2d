//! Where each plan field came from in the pipeline file, so errors found
//! after lowering (validation, plugins) point into the file.

use crate::source::Span;
use std::collections::HashMap;

/// Where each plan field came from. Keys are (step name, field); pipeline-
/// level fields use the step name "". Lookups fall back to the step itself.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    map: HashMap<(String, String), Span>,
}

impl Spans {
    pub fn set(&mut self, step: &str, field: &str, span: Span) {
        self.map.insert((step.to_string(), field.to_string()), span);
    }

    /// The same spans with step names mapped through `renames` (old → new,
    /// applied at once), after a naming plugin renamed steps.
    pub fn renamed(&self, renames: &HashMap<String, String>) -> Spans {
        let map = self
            .map
            .iter()
            .map(|((step, field), span)| {
                let step = renames.get(step).unwrap_or(step);
                ((step.clone(), field.clone()), span.clone())
            })
            .collect();
        Spans { map }
    }

    /// Records where a step name is first defined. A second step with the
    /// same name overwrites every other key; this one keeps the first, so a
    /// duplicate-name error can point at both.
    pub fn define(&mut self, step: &str, span: Span) {
        self.map
            .entry((step.to_string(), FIRST_DEFINITION.to_string()))
            .or_insert(span);
    }

    /// Where the step name was first defined (see `define`).
    pub fn first_definition(&self, step: &str) -> Option<Span> {
        self.get_exact(step, FIRST_DEFINITION)
    }

    /// The span of exactly `step.field`, without falling back to the step.
    pub fn get_exact(&self, step: &str, field: &str) -> Option<Span> {
        self.map
            .get(&(step.to_string(), field.to_string()))
            .cloned()
    }

    /// The span of the first of `fields` that has one, else of the whole
    /// step: for a second value that was derived (a default pool comes from
    /// the CIDR), the value it came from is the place to show.
    pub fn get_first(&self, step: &str, fields: &[&str]) -> Option<Span> {
        fields
            .iter()
            .find_map(|f| self.get_exact(step, f))
            .or_else(|| self.get(step, ""))
    }

    /// The span of `step.field`, else of the whole step, else none.
    pub fn get(&self, step: &str, field: &str) -> Option<Span> {
        self.map
            .get(&(step.to_string(), field.to_string()))
            .or_else(|| self.map.get(&(step.to_string(), String::new())))
            .cloned()
    }
}

/// Spans key (a field name no step has) for a step name's first definition.
const FIRST_DEFINITION: &str = "#first-definition";
