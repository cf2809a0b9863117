//! `preview --open`: the page in the user's browser where there is one; otherwise the path to open.

use std::path::Path;

/// Whether this session can show a browser: `BROWSER` names one, or (on Unix desktops) a display is set.
/// Over SSH or in a container there is none, and `xdg-open` would only fail or start a text browser.
fn has_browser() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    set("BROWSER") || set("DISPLAY") || set("WAYLAND_DISPLAY")
}

/// Opens `page`; `Err` holds the sentence to print instead (the page is written either way).
pub fn open_in_browser(page: &Path) -> Result<(), String> {
    if !has_browser() {
        return Err(format!("no browser here (no DISPLAY, WAYLAND_DISPLAY or BROWSER); open {}", page.display()));
    }
    opener::open_browser(page).map_err(|e| format!("could not open a browser ({e}); open {}", page.display()))
}
