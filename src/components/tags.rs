//! The tag filter and group-by control of the Operations page: the tags a view requires, as
//! removable chips, a field to add one (`key:value`, suggested from the tags of the series in
//! view), and a menu to group rows by a tag key. The page keeps the selection in its URL.

use leptos::prelude::*;

use crate::model::tags::{Selection, Tag, TagValues, MAX_SELECTED};

/// The id of the suggestions list the field offers.
const SUGGESTIONS: &str = "tag-suggestions";

#[component]
pub fn TagControl(
    /// The selection shown now (from the URL).
    #[prop(into)]
    current: Signal<Selection>,
    /// The tag keys and values of the series in view.
    #[prop(into)]
    known: Signal<Vec<TagValues>>,
    /// Called with the selection chosen; the page puts it in the URL.
    on_change: Callback<Selection>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let add = move || {
        let entered = text.get_untracked();
        let mut next = current.get_untracked();
        match Tag::parse(&entered) {
            Err(e) => error.set(Some(e)),
            Ok(_) if next.require.len() >= MAX_SELECTED => {
                error.set(Some(format!("tag: at most {MAX_SELECTED} tags")))
            }
            Ok(tag) => {
                error.set(None);
                text.set(String::new());
                if !next.require.contains(&tag) {
                    next.require.push(tag);
                    on_change.run(next);
                }
            }
        }
    };
    let remove = move |tag: Tag| {
        let mut next = current.get_untracked();
        next.require.retain(|t| *t != tag);
        on_change.run(next);
    };
    let group_by = move |ev| {
        let key = event_target_value(&ev);
        let mut next = current.get_untracked();
        next.by = if key.is_empty() { Vec::new() } else { vec![key] };
        on_change.run(next);
    };
    // Keys to group by: those in view, and the one grouped by now even if none has it.
    let keys = move || {
        let mut keys: Vec<String> = known.with(|k| k.iter().map(|t| t.key.clone()).collect());
        for key in current.with(|s| s.by.clone()) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    };
    let grouped = move || current.with(|s| s.by.join(","));
    view! {
        <div class="tag-control" data-testid="tag-control">
            {move || {
                current
                    .get()
                    .require
                    .into_iter()
                    .map(|tag| {
                        let label = tag.as_text();
                        view! {
                            <span class="tag-chip" data-testid="tag-chip" data-tag=label.clone()>
                                {label.clone()}
                                <button
                                    type="button"
                                    aria-label=format!("Remove {label}")
                                    data-testid="tag-remove"
                                    on:click=move |_| remove(tag.clone())
                                >
                                    "×"
                                </button>
                            </span>
                        }
                    })
                    .collect_view()
            }}
            <form
                class="tag-add"
                on:submit=move |ev| {
                    ev.prevent_default();
                    add();
                }
            >
                <input
                    type="text"
                    list=SUGGESTIONS
                    placeholder="tag key:value"
                    aria-label="Keep only series with this tag (key:value)"
                    data-testid="tag-input"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                />
                <datalist id=SUGGESTIONS>
                    {move || {
                        known
                            .get()
                            .into_iter()
                            .flat_map(|t| {
                                let key = t.key;
                                t.values.into_iter().map(move |v| format!("{key}:{v}"))
                            })
                            .map(|s| view! { <option value=s></option> })
                            .collect_view()
                    }}
                </datalist>
                <button type="submit" class="btn" data-testid="tag-add">"Add"</button>
            </form>
            <label>
                "Group by "
                <select data-testid="group-by" on:change=group_by>
                    <option value="" selected=move || grouped().is_empty()>"name"</option>
                    {move || {
                        keys()
                            .into_iter()
                            .map(|key| {
                                let selected = {
                                    let key = key.clone();
                                    move || grouped() == key
                                };
                                view! { <option value=key.clone() selected=selected>{key.clone()}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
            {move || error.get().map(|text| view! { <span class="notice" role="alert" data-testid="tag-error">{text}</span> })}
        </div>
    }
    .into_any()
}
