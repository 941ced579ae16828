//! Fault injection for the sandbox: tests ask for a fault at a protocol step and the next session
//! that reaches that step suffers it.

use std::str::FromStr;
use std::time::Duration;

/// What to do instead of (or around) the normal reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Close the connection before processing the command.
    Drop,
    /// Process the command, then close without replying (e.g. SEND accepted but QUEUED never seen).
    DropAfter,
    /// Wait before handling the command normally.
    Delay(Duration),
    /// Answer `FAIL <text>` instead of processing.
    Fail(String),
    /// SHOW only: send just this many payload bytes, then close.
    Truncate(usize),
    /// SHOW only: announce a length off by this many bytes, send the real payload.
    LieLength(i64),
    /// Answer this line instead of processing.
    Garbage(String),
    /// Never answer; hold the connection open.
    Stall,
    /// Abort the connection with a TCP reset (SO_LINGER 0, no TLS close_notify) instead of
    /// answering, as a crashed HISP, a restarted load balancer or a killed client does. At `ADD`
    /// it answers `BEGIN` first, so the reset lands in the middle of the upload.
    Reset,
    /// Process the command, then reset without replying.
    ResetAfter,
}

/// One injected fault. `step` is a command verb (`AUTH`, `SEND`, `CHECK`, `SHOW`, `DONE`, `OK`,
/// `ADD`, `TO`...) or `CONNECT` for the moment a TCP connection arrives (before TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub step: String,
    pub action: FaultAction,
    /// How many times it fires before it is used up.
    pub times: u32,
}

impl Fault {
    pub fn new(step: &str, action: FaultAction) -> Self {
        Fault {
            step: step.to_ascii_uppercase(),
            action,
            times: 1,
        }
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }
}

/// Parses the `--fault` syntax: `STEP:ACTION[:ARG][*TIMES]`, e.g. `SHOW:truncate:10`,
/// `SEND:fail:busy*3`, `CHECK:delay:500`, `DONE:drop`, `ADD:reset`.
impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (spec, times) = match s.rsplit_once('*') {
            Some((spec, n)) => (
                spec,
                n.parse::<u32>()
                    .map_err(|_| format!("bad repeat count in {s:?}"))?,
            ),
            None => (s, 1),
        };
        let mut it = spec.splitn(3, ':');
        let step = it.next().filter(|s| !s.is_empty()).ok_or("missing step")?;
        let action = it
            .next()
            .ok_or_else(|| format!("missing action in {s:?}"))?;
        let arg = it.next();
        let num = |what: &str| -> Result<i64, String> {
            arg.ok_or_else(|| format!("{what} needs an argument"))?
                .parse::<i64>()
                .map_err(|_| format!("{what} needs a number"))
        };
        let action = match action.to_ascii_lowercase().as_str() {
            "drop" => FaultAction::Drop,
            "drop-after" => FaultAction::DropAfter,
            "delay" => FaultAction::Delay(Duration::from_millis(num("delay")?.max(0) as u64)),
            "fail" => FaultAction::Fail(arg.unwrap_or("injected failure").to_owned()),
            "truncate" => FaultAction::Truncate(num("truncate")?.max(0) as usize),
            "lie-length" => FaultAction::LieLength(num("lie-length")?),
            "garbage" => FaultAction::Garbage(arg.unwrap_or("%%GARBAGE%%").to_owned()),
            "stall" => FaultAction::Stall,
            "reset" => FaultAction::Reset,
            "reset-after" => FaultAction::ResetAfter,
            other => return Err(format!("unknown fault action {other:?}")),
        };
        Ok(Fault::new(step, action).times(times))
    }
}

#[derive(Debug, Default)]
pub struct FaultPlan {
    faults: Vec<Fault>,
}

impl FaultPlan {
    pub fn push(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// Takes one firing of the first fault registered for `step`.
    pub fn take(&mut self, step: &str) -> Option<FaultAction> {
        let i = self
            .faults
            .iter()
            .position(|f| f.step.eq_ignore_ascii_case(step) && f.times > 0)?;
        let fault = &mut self.faults[i];
        fault.times -= 1;
        let action = fault.action.clone();
        if fault.times == 0 {
            self.faults.remove(i);
        }
        Some(action)
    }

    pub fn pending(&self) -> usize {
        self.faults.iter().map(|f| f.times as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fault_specs() {
        let f: Fault = "show:truncate:10*2".parse().unwrap();
        assert_eq!(f, Fault::new("SHOW", FaultAction::Truncate(10)).times(2));
        let f: Fault = "SEND:fail:busy now".parse().unwrap();
        assert_eq!(f.action, FaultAction::Fail("busy now".into()));
        let f: Fault = "ADD:reset".parse().unwrap();
        assert_eq!(f.action, FaultAction::Reset);
        let f: Fault = "send:reset-after*2".parse().unwrap();
        assert_eq!(f, Fault::new("SEND", FaultAction::ResetAfter).times(2));
        assert!("SEND:explode".parse::<Fault>().is_err());
        assert!("CHECK:delay".parse::<Fault>().is_err());
    }

    #[test]
    fn plan_fires_in_order_and_runs_out() {
        let mut plan = FaultPlan::default();
        plan.push(Fault::new("DONE", FaultAction::Drop).times(2));
        plan.push(Fault::new("DONE", FaultAction::Stall));
        assert_eq!(plan.take("CHECK"), None);
        assert_eq!(plan.take("done"), Some(FaultAction::Drop));
        assert_eq!(plan.take("DONE"), Some(FaultAction::Drop));
        assert_eq!(plan.take("DONE"), Some(FaultAction::Stall));
        assert_eq!(plan.take("DONE"), None);
        assert_eq!(plan.pending(), 0);
    }
}
