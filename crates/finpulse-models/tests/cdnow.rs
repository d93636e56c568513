//! The published fits on the CDNOW sample (see `testdata/README.md` at the repository's root for the
//! data's origin and the reference values), reproduced to 3 significant digits.

use finpulse_models::summary::read_summary;
use finpulse_models::{LtvFit, LtvModel, fit, predict};
use std::path::PathBuf;

/// This package's directory, asked at run time: a path baked in at compile time would point
/// into whichever checkout built the test binary when builds are cached across checkouts.
fn package_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run through cargo test, which sets CARGO_MANIFEST_DIR"))
}

fn data(name: &str) -> PathBuf {
    let path = package_dir().join("../../testdata").join(name);
    assert!(path.exists(), "{} is missing: the test data sets are in the repository's testdata folder", path.display());
    path
}

fn fit_file(model: LtvModel, name: &str) -> LtvFit {
    let customers = read_summary(std::fs::File::open(data(name)).unwrap()).unwrap();
    fit(model, &customers).unwrap()
}

fn assert_3_significant(fit: &LtvFit, expected: &[f64], log_likelihood: f64) {
    for (p, want) in fit.params.iter().zip(expected) {
        let rel = (p.value - want).abs() / want.abs();
        assert!(rel < 5e-3, "{} = {} but the published value is {want}", p.name, p.value);
        let se = p.std_error.expect("a standard error");
        assert!(se > 0.0 && se < p.value, "{} has standard error {se}", p.name);
    }
    assert!((fit.log_likelihood - log_likelihood).abs() < 0.01, "log-likelihood {} vs {log_likelihood}", fit.log_likelihood);
    assert!(fit.warnings.is_empty(), "{:?}", fit.warnings);
}

#[test]
fn a_fit_the_data_cannot_identify_says_so() {
    // Every customer buys steadily up to the end: nothing shows drop-out, so BG/NBD's a (and b)
    // run off to the edge of the parameter space.
    let customers: Vec<finpulse_models::Customer> = (0..400)
        .map(|i| {
            let age = 20.0 + f64::from(i % 20);
            finpulse_models::Customer { id: i.to_string(), frequency: f64::from(3 + i % 5), recency: age, age, monetary: None }
        })
        .collect();
    let f = fit(LtvModel::Bgnbd, &customers).unwrap();
    assert!(f.warnings.iter().any(|w| w.contains("no standard errors")), "{:?} {:?}", f.params, f.warnings);
}

#[test]
fn bgnbd_reproduces_fader_hardie_lee() {
    let f = fit_file(LtvModel::Bgnbd, "cdnow-sample-summary.csv");
    assert_3_significant(&f, &[0.2426, 4.4137, 0.7930, 2.4262], -9582.43);
    assert_eq!(f.customers, 2357);
}

#[test]
fn pareto_nbd_reproduces_the_published_fit() {
    let f = fit_file(LtvModel::Pnbd, "cdnow-sample-summary.csv");
    assert_3_significant(&f, &[0.5533, 10.5776, 0.6062, 11.6687], -9594.98);
}

#[test]
fn gamma_gamma_reproduces_fader_hardie() {
    let f = fit_file(LtvModel::Gg, "cdnow-sample-summary-spend.csv");
    assert_3_significant(&f, &[6.25, 3.74, 15.44], -4055.92);
    assert_eq!(f.customers, 946);
}

#[test]
fn predictions_follow_the_customers_history() {
    let f = fit_file(LtvModel::Bgnbd, "cdnow-sample-summary.csv");
    let customer =
        |x: f64, t_x: f64| finpulse_models::Customer { id: String::new(), frequency: x, recency: t_x, age: 38.86, monetary: None };
    // Fader, Hardie & Lee (2005): a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make
    // 1.226 purchases in the next 39 weeks.
    let p = predict(&f, &customer(2.0, 30.43), 39.0).unwrap();
    assert!((p.expected_purchases - 1.226).abs() < 0.01, "{}", p.expected_purchases);
    // A recent buyer is more likely alive than one who bought the same number of times long ago.
    let recent = predict(&f, &customer(5.0, 38.0), 39.0).unwrap();
    let lapsed = predict(&f, &customer(5.0, 5.0), 39.0).unwrap();
    assert!(recent.p_alive > 0.8 && lapsed.p_alive < 0.05, "{} {}", recent.p_alive, lapsed.p_alive);
    assert!(recent.expected_purchases > lapsed.expected_purchases);
    // Without repeat purchases BG/NBD says the customer is alive.
    assert_eq!(predict(&f, &customer(0.0, 0.0), 39.0).unwrap().p_alive, 1.0);
}

#[test]
fn mbgnbd_matches_lifetimes_on_the_cdnow_sample() {
    // Reference: lifetimes 0.11.3's ModifiedBetaGeoFitter likelihood on this file, maximised with
    // scipy's Nelder–Mead to 1e-12 (lifetimes' own fit stops at its default tolerance):
    // r 0.524838, α 6.182992, a 0.891356, b 1.613999, log-likelihood −9582.1327.
    let f = fit_file(LtvModel::Mbgnbd, "cdnow-sample-summary.csv");
    assert_3_significant(&f, &[0.524838, 6.182992, 0.891356, 1.613999], -9582.1327);
    let customer =
        |x: f64, t_x: f64| finpulse_models::Customer { id: String::new(), frequency: x, recency: t_x, age: 38.86, monetary: None };
    // Unlike BG/NBD, a customer without repeats may have dropped out: lifetimes gives P(alive)
    // 0.38972 and 0.15395 purchases in the next 39 weeks for x = 0, T = 38.86.
    let p = predict(&f, &customer(0.0, 0.0), 39.0).unwrap();
    assert!((p.p_alive - 0.38972).abs() < 1e-3, "{}", p.p_alive);
    assert!((p.expected_purchases - 0.15395).abs() < 1e-3, "{}", p.expected_purchases);
    // With repeats, P(alive) agrees too (lifetimes' expected purchases put frequency where
    // recency belongs in the drop-out odds, so only P(alive) is compared there).
    let p = predict(&f, &customer(2.0, 30.43), 39.0).unwrap();
    assert!((p.p_alive - 0.70613).abs() < 1e-3, "{}", p.p_alive);
}

#[test]
fn bgbb_reproduces_fader_hardie_shang_on_the_donations() {
    let path = package_dir().join("tests/data/donations.csv");
    let customers = read_summary(std::fs::File::open(path).unwrap()).unwrap();
    assert_eq!(customers.len(), 11_104, "weighted rows stand for every donor");
    let f = fit(LtvModel::Bgbb, &customers).unwrap();
    assert_3_significant(&f, &[1.204, 0.750, 0.657, 2.783], -33225.58);
    // lifetimes 0.11.3 (BetaGeoBetaBinomFitter at these parameters): P(alive) in the next period
    // and expected donations in the next 5 periods, for (x, t_x, n).
    let customer = |x: f64, t_x: f64| finpulse_models::Customer { id: String::new(), frequency: x, recency: t_x, age: 6.0, monetary: None };
    for (x, t_x, p_alive, expected) in [
        (0.0, 0.0, 0.1081333, 0.07286334),
        (3.0, 6.0, 0.93043357, 2.18974863),
        (3.0, 3.0, 0.09500629, 0.22359456),
        (6.0, 6.0, 0.93043357, 3.75254421),
    ] {
        let p = predict(&f, &customer(x, t_x), 5.0).unwrap();
        assert!((p.p_alive - p_alive).abs() < 2e-3, "x {x}, t_x {t_x}: P(alive) {} vs {p_alive}", p.p_alive);
        assert!((p.expected_purchases - expected).abs() / expected < 5e-3, "x {x}, t_x {t_x}: {} vs {expected}", p.expected_purchases);
    }
    // A continuous-time summary is refused, naming the row.
    let fractional = [finpulse_models::Customer { id: "a".into(), frequency: 1.0, recency: 2.5, age: 6.0, monetary: None }];
    let err = fit(LtvModel::Bgbb, &fractional).unwrap_err().to_string();
    assert!(err.contains("row 1, column 'recency': 2.5 is not a whole number of periods"), "{err}");
    let crowded = [finpulse_models::Customer { id: "a".into(), frequency: 4.0, recency: 2.0, age: 6.0, monetary: None }];
    assert!(fit(LtvModel::Bgbb, &crowded).unwrap_err().to_string().contains("cannot fit in 2 periods"));
}
