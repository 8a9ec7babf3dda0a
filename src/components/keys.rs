//! Keyboard activation for elements that are not buttons: a table row that selects what it
//! shows (the Operations and Values pages) is focusable and answers Enter and Space as a
//! click does.

/// Whether `ev` activates a focused control: Enter, or Space (whose default, scrolling the
/// page, is prevented).
pub fn activates(ev: &leptos::ev::KeyboardEvent) -> bool {
    match ev.key().as_str() {
        "Enter" => true,
        " " => {
            ev.prevent_default();
            true
        }
        _ => false,
    }
}
