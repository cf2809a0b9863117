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
///
/// The browser gets the absolute path: a relative one means nothing to a browser already running in another
/// folder, and one that starts with `-` (a job folder named so) would be read as the browser's own option.
pub fn open_in_browser(page: &Path) -> Result<(), String> {
    if !has_browser() {
        return Err(format!("no browser here (no DISPLAY, WAYLAND_DISPLAY or BROWSER); open {}", page.display()));
    }
    let failed = |e: &dyn std::fmt::Display| format!("could not open a browser ({e}); open {}", page.display());
    let absolute = std::path::absolute(page).map_err(|e| failed(&e))?;
    opener::open_browser(absolute).map_err(|e| failed(&e))
}
