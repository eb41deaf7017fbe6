//! The metric model every collector fills and both exposition writers read.

/// Prometheus metric type. Counter names end in `_total` and info names in
/// `_info`; the OpenMetrics writer strips those for its TYPE line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Info,
    /// Samples `_bucket{le}` (cumulative), `_sum` and `_count` per label set.
    Histogram,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub label_values: Vec<String>,
    pub value: f64,
    /// Appended to the family name: "" but for a histogram's "_bucket"
    /// (whose last label value is its `le`), "_sum" and "_count".
    pub suffix: &'static str,
}

/// One metric family: a name, its help text, label names and samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub label_names: Vec<&'static str>,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &str, help: &str, kind: Kind, label_names: &[&'static str]) -> Family {
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "{name}");
        debug_assert!(kind != Kind::Info || name.ends_with("_info"), "{name}");
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            label_names: label_names.to_vec(),
            samples: Vec::new(),
        }
    }
    pub fn gauge(name: &str, help: &str, labels: &[&'static str]) -> Family {
        Family::new(name, help, Kind::Gauge, labels)
    }
    pub fn counter(name: &str, help: &str, labels: &[&'static str]) -> Family {
        Family::new(name, help, Kind::Counter, labels)
    }
    pub fn info(name: &str, help: &str, labels: &[&'static str]) -> Family {
        Family::new(name, help, Kind::Info, labels)
    }

    /// Adds a sample; label values in the order of `label_names`.
    pub fn add<S: AsRef<str>>(&mut self, label_values: &[S], value: f64) -> &mut Self {
        debug_assert_eq!(label_values.len(), self.label_names.len(), "{}", self.name);
        self.samples.push(Sample {
            label_values: label_values
                .iter()
                .map(|s| s.as_ref().to_string())
                .collect(),
            value,
            suffix: "",
        });
        self
    }

    pub fn histogram(name: &str, help: &str, labels: &[&'static str]) -> Family {
        Family::new(name, help, Kind::Histogram, labels)
    }

    /// One histogram of a histogram family: `cumulative[i]` observations
    /// are at most `bounds[i]`; all `count` are at most +Inf.
    pub fn add_histogram<S: AsRef<str>>(
        &mut self,
        label_values: &[S],
        bounds: &[u64],
        cumulative: &[u64],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        debug_assert_eq!(self.kind, Kind::Histogram, "{}", self.name);
        debug_assert_eq!(label_values.len(), self.label_names.len(), "{}", self.name);
        let values: Vec<String> = label_values
            .iter()
            .map(|s| s.as_ref().to_string())
            .collect();
        // `le` as OpenMetrics wants it, a float: "30.0"; Prometheus reads it too.
        let les = bounds.iter().map(|b| format!("{:?}", *b as f64));
        for (le, n) in les
            .chain(["+Inf".to_string()])
            .zip(cumulative.iter().chain([&count]))
        {
            let mut with_le = values.clone();
            with_le.push(le);
            self.samples.push(Sample {
                label_values: with_le,
                value: *n as f64,
                suffix: "_bucket",
            });
        }
        for (suffix, value) in [("_sum", sum), ("_count", count as f64)] {
            self.samples.push(Sample {
                label_values: values.clone(),
                value,
                suffix,
            });
        }
        self
    }

    /// A family with one unlabelled sample.
    pub fn single(name: &str, help: &str, kind: Kind, value: f64) -> Family {
        let mut f = Family::new(name, help, kind, &[]);
        f.add::<&str>(&[], value);
        f
    }
}

/// A gauge family from a map of two label values to values (sorted, as the
/// map is).
pub fn gauge2<A: AsRef<str>, B: AsRef<str>>(
    name: &str,
    help: &str,
    labels: [&'static str; 2],
    map: &std::collections::BTreeMap<(A, B), f64>,
) -> Family {
    let mut f = Family::gauge(name, help, &labels);
    for ((a, b), v) in map {
        f.add(&[a.as_ref(), b.as_ref()], *v);
    }
    f
}
