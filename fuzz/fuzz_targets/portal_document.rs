//! The portal document (`worker portal apply`, the website's JSON API):
//! parsing and validation of arbitrary text never panic, and a valid
//! document's export parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use domain::portal::PortalDocument;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = PortalDocument::parse(text) else {
        return;
    };
    let Ok(valid) = doc.validate() else {
        return;
    };
    let again = PortalDocument::export(&valid.config, domain::portal::HubSpotAuthKind::PrivateApp);
    let text = serde_json::to_string(&again).expect("a document serialises");
    let reparsed = PortalDocument::parse(&text).expect("an exported document parses");
    let _ = reparsed.validate();
});
