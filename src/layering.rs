//! Keeps the module graph acyclic: every `crate::` reference in non-test code must point to a
//! module of a lower layer. A folder (`token/`) is one module.

use std::collections::BTreeMap;
use std::path::Path;

/// Each module's layer; a module may use only modules with a smaller number.
const LAYERS: &[(&str, u32)] = &[
    ("secret", 0),
    ("jwt", 0),
    ("env", 0),
    ("hosts", 0),
    ("files", 0),
    ("identity", 1),
    ("config", 2),
    ("http", 2),
    ("clients", 2),
    ("error", 3),
    ("context", 4),
    ("protocol", 4),
    ("token", 5),
    ("acr", 6),
    ("cache", 7),
    ("kubelet", 8),
    ("flow", 8),
    ("doctor", 9),
    ("configure", 9),
    ("cli", 10),
    ("commands", 11),
    ("front", 11),
    ("output", 11),
];

/// The modules a source text refers to through `crate::`, outside its `#[cfg(test)]` part.
fn references(text: &str) -> Vec<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inside = group.split('}').next().unwrap_or("");
            for item in inside.split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                out.push(name.to_string());
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_use_points_down_a_layer() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = 0;
    for file in files {
        let module = module_of(&file, &src);
        // The programs (`main.rs`, `bin/`) sit above every module.
        if ["lib", "main", "bin", "layering"].contains(&module.as_str()) {
            continue;
        }
        let Some(&layer) = layers.get(module.as_str()) else {
            wrong.push(format!("{module}: not in LAYERS; give it a layer"));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for used in references(&text) {
            seen += 1;
            if used == module {
                continue;
            }
            match layers.get(used.as_str()) {
                Some(&l) if l < layer => {}
                Some(&l) => wrong.push(format!(
                    "{}: {module} (layer {layer}) uses {used} (layer {l})",
                    file.display()
                )),
                None => wrong.push(format!("{}: uses unknown module {used}", file.display())),
            }
        }
    }
    assert!(seen > 50, "the scan found only {seen} references");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn references_are_read_from_every_form() {
    let text = "use crate::a::B;\nuse crate::{b, c::D};\nfn f() { crate::d::e(); }\n#[cfg(test)]\nuse crate::z;";
    assert_eq!(references(text), ["a", "b", "c", "d"]);
}
