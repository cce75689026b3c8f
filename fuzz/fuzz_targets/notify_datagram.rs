//! sd_notify datagrams reaching the relay: the first byte picks the sender (the main child,
//! another process of the unit, another process, no credentials) and the unit's NotifyAccess=,
//! the rest is the datagram. The relay's promise (`gwshim::notify::promise`): a READY=1 from
//! the child that systemd would act on is never lost, nothing from a sender systemd would not
//! listen to ever passes, and what passes holds no MAINPID=, MAINPIDFD=, NOTIFYACCESS= or
//! STOPPING=1 however systemd reads it, fits its 4096 bytes and passes again unchanged.
#![no_main]

use gwshim::notify::{Access, Origin, promise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, datagram)) = data.split_first() else {
        return;
    };
    let origin = [Origin::Main, Origin::Unit, Origin::Other, Origin::Unknown][usize::from(pick & 3)];
    let access = [Access::Main, Access::All, Access::Nothing, Access::Main][usize::from((pick >> 2) & 3)];
    if let Err(e) = promise(origin, access, datagram) {
        panic!("{e}");
    }
});
