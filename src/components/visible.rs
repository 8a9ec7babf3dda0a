//! Telling when an element nears the viewport: an `IntersectionObserver` (web-sys) that
//! latches once. On the server, and in a browser without the API, nothing is observed and the
//! caller's content simply loads (see [`use_visible_once`]).

use leptos::html::Div;
use leptos::prelude::*;

/// A signal that turns true, once, when the element behind `node` comes within
/// `root_margin` (CSS margin syntax, e.g. `"100% 0px"` for one screen ahead) of the viewport,
/// and stays true. Where the browser has no `IntersectionObserver` it turns true at once.
pub fn use_visible_once(node: NodeRef<Div>, root_margin: &'static str) -> ReadSignal<bool> {
    let (visible, set_visible) = signal(false);
    #[cfg(feature = "hydrate")]
    {
        // The observer and its callback, held while the calling view lives: a view left
        // before it came into sight lets them go (with the element) instead of leaking them.
        let held = StoredValue::new_local(None::<Observer>);
        on_cleanup(move || {
            if let Some(Some(observer)) = held.try_update_value(Option::take) {
                observer.0.disconnect();
            }
        });
        Effect::new(move |observed: Option<bool>| {
            if observed == Some(true) {
                return true;
            }
            let Some(element) = node.get() else { return false };
            match observe(&element, root_margin, set_visible) {
                Some(observer) => held.set_value(Some(observer)),
                None => set_visible.set(true),
            }
            true
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (node, root_margin, set_visible);
    visible
}

/// An observer and the callback it calls.
#[cfg(feature = "hydrate")]
struct Observer(
    web_sys::IntersectionObserver,
    #[allow(dead_code)]
    wasm_bindgen::closure::Closure<dyn FnMut(js_sys::Array, web_sys::IntersectionObserver)>,
);

/// Starts observing `element`; `None` when the browser has no `IntersectionObserver`.
#[cfg(feature = "hydrate")]
fn observe(
    element: &web_sys::HtmlDivElement,
    root_margin: &str,
    set: WriteSignal<bool>,
) -> Option<Observer> {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    let callback = Closure::<dyn FnMut(js_sys::Array, web_sys::IntersectionObserver)>::new(
        move |entries: js_sys::Array, observer: web_sys::IntersectionObserver| {
            let near = entries.iter().any(|e| {
                e.dyn_into::<web_sys::IntersectionObserverEntry>()
                    .is_ok_and(|e| e.is_intersecting())
            });
            if near {
                set.set(true);
                // Latched: nothing more to watch.
                observer.disconnect();
            }
        },
    );
    let options = web_sys::IntersectionObserverInit::new();
    options.set_root_margin(root_margin);
    let observer = web_sys::IntersectionObserver::new_with_options(
        callback.as_ref().unchecked_ref(),
        &options,
    )
    .ok()?;
    observer.observe(element);
    Some(Observer(observer, callback))
}
