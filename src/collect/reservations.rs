use super::{Collector, Source, Sources};
use crate::metrics::Family;
use crate::slurm;

pub struct ReservationsCollector;

impl Collector for ReservationsCollector {
    fn name(&self) -> &'static str {
        "reservations"
    }
    fn needs(&self) -> &'static [Source] {
        &[]
    }
    fn collect(&mut self, _: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        let resv = slurm::load_reservations().map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let l = &["reservation"];
        let mut info = Family::info(
            "slurm_reservation_info",
            "A reservation's partition, nodes, users and accounts",
            &[
                "reservation",
                "partition",
                "nodes",
                "users",
                "accounts",
                "maint",
            ],
        );
        let mut nodes = Family::gauge("slurm_reservation_nodes", "Nodes in a reservation", l);
        let mut cores = Family::gauge("slurm_reservation_cores", "Cores in a reservation", l);
        let mut start = Family::gauge(
            "slurm_reservation_start_time_seconds",
            "Start of a reservation",
            l,
        );
        let mut end = Family::gauge(
            "slurm_reservation_end_time_seconds",
            "End of a reservation",
            l,
        );
        let mut active = Family::gauge(
            "slurm_reservation_active",
            "1 while now is between a reservation's start and end",
            l,
        );
        for r in &resv {
            let n = [r.name.as_str()];
            let maint = if r.is_maint() { "true" } else { "false" };
            info.add(
                &[
                    &r.name,
                    &r.partition,
                    &r.node_list,
                    &r.users,
                    &r.accounts,
                    maint,
                ],
                1.0,
            );
            nodes.add(&n, r.node_count as f64);
            cores.add(&n, r.core_count as f64);
            start.add(&n, r.start_time as f64);
            end.add(&n, r.end_time as f64);
            active.add(
                &n,
                if r.start_time <= now && now < r.end_time {
                    1.0
                } else {
                    0.0
                },
            );
        }
        out.extend([info, nodes, cores, start, end, active]);
        Ok(())
    }
}
