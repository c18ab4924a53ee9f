//! `export!` takes the `#[op]` functions by path: a plain name, `self::`, `crate::` and nested
//! modules, with a trailing comma.

use shoal_sdk::bindings::exports::shoal::op::op::Guest;
use shoal_sdk::op;

/// at the root
#[op]
fn top() -> i64 {
    1
}

mod nested {
    use shoal_sdk::op;

    pub mod deeper {
        use shoal_sdk::op;

        /// two modules down
        #[op]
        pub fn inner(x: i64) -> i64 {
            x + 1
        }
    }

    /// one module down, visible to the crate only
    #[op]
    pub(crate) fn middle() -> String {
        "m".to_string()
    }
}

shoal_sdk::export!(top, self::nested::middle, crate::nested::deeper::inner,);

#[test]
fn every_path_form_is_exported_in_order() {
    let infos = <__ShoalComponent as Guest>::describe();
    let described: Vec<(&str, &str)> = infos
        .iter()
        .map(|info| (info.name.as_str(), info.description.as_str()))
        .collect();
    assert_eq!(
        described,
        [
            ("top", "at the root"),
            ("middle", "one module down, visible to the crate only"),
            ("inner", "two modules down"),
        ]
    );
    assert_eq!(nested::deeper::inner(1), 2);
}
