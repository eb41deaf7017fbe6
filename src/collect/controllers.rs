//! Pings every SlurmctldHost. A standby controller answers ping too, so
//! this says which controllers are up, not which one is in control.

use super::{Collector, Source, Sources};
use crate::metrics::Family;
use crate::slurm;
use std::time::Instant;

pub struct ControllersCollector;

impl Collector for ControllersCollector {
    fn name(&self) -> &'static str {
        "controllers"
    }
    fn needs(&self) -> &'static [Source] {
        &[Source::Config]
    }
    fn collect(&mut self, sources: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        let l = &["host", "index"];
        let mut up = Family::gauge(
            "slurm_controller_up",
            "1 when the controller answers a ping (a standby answers too)",
            l,
        );
        let mut rtt = Family::gauge(
            "slurm_controller_ping_seconds",
            "Round trip of the last ping to the controller",
            l,
        );
        for (i, host) in sources.config().control_machines.iter().enumerate() {
            let index = i.to_string();
            let t0 = Instant::now();
            let ok = slurm::ping(i).is_ok();
            up.add(&[host.as_str(), index.as_str()], if ok { 1.0 } else { 0.0 });
            if ok {
                rtt.add(&[host.as_str(), index.as_str()], t0.elapsed().as_secs_f64());
            }
        }
        out.extend([up, rtt]);
        Ok(())
    }
}
