use super::{Collector, Source, Sources};
use crate::metrics::Family;
use crate::slurm;

pub struct LicensesCollector;

impl Collector for LicensesCollector {
    fn name(&self) -> &'static str {
        "licenses"
    }
    fn needs(&self) -> &'static [Source] {
        &[]
    }
    fn collect(&mut self, _: &Sources, out: &mut Vec<Family>) -> Result<(), String> {
        let mut lic = slurm::load_licenses().map_err(|e| e.to_string())?;
        lic.sort_by(|a, b| a.name.cmp(&b.name));
        let l = &["license"];
        let mut count = Family::gauge(
            "slurm_license_configured",
            "Licenses configured (Licenses= or remote)",
            l,
        );
        let mut used = Family::gauge("slurm_license_in_use", "Licenses held by running jobs", l);
        let mut free = Family::gauge("slurm_license_free", "Licenses available to new jobs", l);
        let mut resv = Family::gauge("slurm_license_reserved", "Licenses held by reservations", l);
        for x in &lic {
            let n = [x.name.as_str()];
            count.add(&n, x.total as f64);
            used.add(&n, x.in_use as f64);
            free.add(&n, x.available as f64);
            resv.add(&n, x.reserved as f64);
        }
        out.extend([count, used, free, resv]);
        Ok(())
    }
}
