//! Golden predictions: models trained by LightGBM 4.7 and XGBoost 3.2 on the UCI credit-default
//! table (with blanked values), and the probabilities those libraries themselves gave for 300
//! rows (`tests/data/golden`, written by `bench/golden_models.py`). The import must agree.

use finpulse_models::import::ImportedTrees;

/// This package's directory, asked at run time: a path baked in at compile time would point
/// into whichever checkout built the test binary when builds are cached across checkouts.
fn package_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test, which sets CARGO_MANIFEST_DIR"))
}

fn golden() -> (Vec<String>, Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(package_dir().join("tests/data/golden/rows.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    let n = header.len() - 2;
    let (mut rows, mut lgb, mut xgb) = (Vec::new(), Vec::new(), Vec::new());
    for line in lines {
        let cells: Vec<f64> = line.split(',').map(|c| if c.is_empty() { f64::NAN } else { c.parse().unwrap() }).collect();
        rows.push(cells[..n].to_vec());
        lgb.push(cells[n]);
        xgb.push(cells[n + 1]);
    }
    (header[..n].to_vec(), rows, lgb, xgb)
}

fn check(model: &ImportedTrees, names: &[String], rows: &[Vec<f64>], expected: &[f64], tolerance: f64) {
    assert_eq!(model.features, names);
    assert_eq!(rows.len(), 300);
    assert!(rows.iter().any(|r| r.iter().any(|v| v.is_nan())), "the golden rows exercise missing values");
    let mut worst = 0.0f64;
    for (i, (x, want)) in rows.iter().zip(expected).enumerate() {
        let got = model.predict_row(x);
        worst = worst.max((got - want).abs());
        assert!((got - want).abs() <= tolerance, "row {i}: {got} vs {want}");
        let mut c = vec![0.0; names.len()];
        model.contributions_row(x, &mut c);
        assert!(c.iter().all(|v| v.is_finite()));
    }
    assert!(worst <= tolerance, "{worst}");
}

#[test]
fn a_lightgbm_model_predicts_what_lightgbm_predicted() {
    let (names, rows, lgb, _) = golden();
    let text = std::fs::read_to_string(package_dir().join("tests/data/golden/lightgbm.txt")).unwrap();
    let model = ImportedTrees::from_lightgbm(&text).unwrap();
    assert_eq!(model.trees.len(), 40);
    // LightGBM scores in 64-bit floats.
    check(&model, &names, &rows, &lgb, 1e-12);
}

#[test]
fn an_xgboost_model_predicts_what_xgboost_predicted() {
    let (names, rows, _, xgb) = golden();
    let json = std::fs::read_to_string(package_dir().join("tests/data/golden/xgboost.json")).unwrap();
    let model = ImportedTrees::from_xgboost(&json).unwrap();
    assert_eq!(model.trees.len(), 40);
    // XGBoost sums leaves in 32-bit floats.
    check(&model, &names, &rows, &xgb, 1e-6);
}

#[test]
fn damaged_model_files_are_refused_with_their_place() {
    let text = std::fs::read_to_string(package_dir().join("tests/data/golden/lightgbm.txt")).unwrap();
    let damaged = text.replacen("left_child=1 ", "left_child=x ", 1);
    let e = ImportedTrees::from_lightgbm(&damaged).unwrap_err().to_string();
    assert!(e.contains("left_child: \"x\" is not a number"), "{e}");
    assert!(e.starts_with("LightGBM model, line "), "{e}");
    let json = std::fs::read_to_string(package_dir().join("tests/data/golden/xgboost.json")).unwrap();
    let damaged = json.replacen("\"split_conditions\"", "\"split_conditionz\"", 1);
    let e = ImportedTrees::from_xgboost(&damaged).unwrap_err().to_string();
    assert_eq!(e, "XGBoost model, learner.gradient_booster.model.trees[0]: split_conditions is missing");
}
