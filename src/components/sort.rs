//! A sortable table's column header: a button that sorts by its column (again: the other way),
//! with `aria-sort` and an arrow on the current column. Shared by the Operations page and a
//! report's Operations section.

use leptos::prelude::*;

use crate::model::ops::SortKey;

#[component]
pub fn SortHeader(
    key: SortKey,
    label: String,
    /// The current column and whether it runs largest first.
    sort: RwSignal<(SortKey, bool)>,
) -> impl IntoView {
    let aria = move || {
        let (current, descending) = sort.get();
        (current == key).then_some(if descending { "descending" } else { "ascending" })
    };
    view! {
        <th aria-sort=aria>
            <button
                type="button"
                data-testid=format!("sort-{}", key.as_str())
                on:click=move |_| {
                    sort.update(|(current, descending)| {
                        if *current == key {
                            *descending = !*descending;
                        } else {
                            *current = key;
                            *descending = key.default_descending();
                        }
                    })
                }
            >
                {label}
                {move || match aria() {
                    Some("descending") => " ▼",
                    Some(_) => " ▲",
                    None => "",
                }}
            </button>
        </th>
    }
}
