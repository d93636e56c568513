//! What crosses the wire in a whole job — intersection, vertical LR and SecureBoost under
//! Paillier — captured and searched: no id (in the intersection or not), no raw feature value
//! and no label appears in any message; gradient sums reach the arbiter only masked; each kind
//! of message goes only where the protocol sends it.

mod common;

use common::{boost_job, lr_job, psi_job, synthetic};
use finpulse_federation::boost::BinnedFeatures;
use finpulse_federation::job::PsiReveal;
use finpulse_federation::local::{boost_in_process, lr_in_process, psi_in_process};
use finpulse_federation::lr::LrFeatures;
use finpulse_federation::message::{Message, pack_bits};
use finpulse_federation::paillier::PaillierSuite;
use finpulse_federation::table::Table;
use finpulse_federation::transport::{Capturing, Envelope, LocalTransport};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Which kinds may go from whom to whom.
fn allowed(from: &str, to: &str, kind: &str) -> bool {
    let common = ["hello", "abort", "done"];
    let by_direction: &[&str] = match (from, to) {
        ("bank", "payco") => {
            &["psi_blinded", "psi_matches", "lr_residuals", "public_key", "boost_gradients", "boost_nodes", "boost_splits"]
        }
        ("payco", "bank") => &["psi_blinded", "psi_doubled", "lr_host_scores", "boost_histograms", "boost_rows_left"],
        ("bank" | "payco", "arbiter") => &["lr_masked_gradient"],
        ("arbiter", "bank" | "payco") => &["public_key", "lr_decrypted"],
        _ => &[],
    };
    common.contains(&kind) || by_direction.contains(&kind)
}

#[test]
fn nothing_raw_crosses_the_wire() {
    let rows = 80;
    let mut data = synthetic(rows, 0, 5);
    // Ids outside the intersection on both sides.
    data.guest_ids.extend((0..20).map(|i| format!("guest-only-{i}")));
    let host_ids: Vec<String> = (0..15).map(|i| format!("host-only-{i}")).chain(data.host_ids.iter().rev().cloned()).collect();
    let transport = Capturing::new(LocalTransport::new(&["bank", "payco", "arbiter"]));

    let (g, h) = psi_in_process(&transport, &psi_job(), PsiReveal::Intersection, &data.guest_ids, &host_ids).unwrap();
    let (g_rows, h_rows) = (g.common_rows.unwrap(), h.common_rows.unwrap());
    assert_eq!(g_rows.len(), rows);
    assert!(g_rows.iter().zip(&h_rows).all(|(&a, &b)| data.guest_ids[a] == host_ids[b] && data.guest_ids[a].starts_with("user-")));
    // The host's own table, in its own order: rows of host-only ids hold values of their own.
    let host_own = Table {
        names: data.host.names.clone(),
        columns: data
            .host
            .columns
            .iter()
            .enumerate()
            .map(|(k, column)| {
                host_ids
                    .iter()
                    .enumerate()
                    .map(|(j, id)| {
                        id.strip_prefix("user-").map_or(77_777.125 + (j * 3 + k) as f64 * 0.25, |i| column[i.parse::<usize>().unwrap()])
                    })
                    .collect()
            })
            .collect(),
    };
    // The guest's rows are its first `rows` ids, already in the intersection's order.
    assert_eq!(g_rows, (0..rows).collect::<Vec<_>>());
    let host_table = host_own.take(&h_rows);
    let guest_lr = LrFeatures::fit(&data.guest).with_intercept();
    lr_in_process::<PaillierSuite>(&transport, &lr_job(512, 1, 40), &guest_lr, &data.labels, &LrFeatures::fit(&host_table)).unwrap();
    let (gb, hb) = (BinnedFeatures::fit(&data.guest, 16), BinnedFeatures::fit(&host_table, 16));
    boost_in_process::<PaillierSuite>(&transport, &boost_job(512, 2, 2), &gb, &data.labels, &hb).unwrap();

    let captured = transport.captured();
    assert!(captured.len() > 30, "the jobs exchanged messages");
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for id in data.guest_ids.iter().chain(&host_ids) {
        needles.push((format!("id {id}"), id.as_bytes().to_vec()));
    }
    for (table, name) in [(&host_own, "host"), (&data.guest, "guest")] {
        for column in &table.columns {
            for &v in column.iter().filter(|v| v.fract() != 0.0) {
                needles.push((format!("{name} value {v} (f64)"), v.to_le_bytes().to_vec()));
                needles.push((format!("{name} value {v} (text)"), v.to_string().into_bytes()));
            }
        }
    }
    needles.push(("labels as f64".into(), data.labels[..8].iter().flat_map(|y| y.to_le_bytes()).collect()));
    needles.push(("labels as bytes".into(), data.labels[..32].iter().map(|&y| y as u8).collect()));
    needles.push(("labels as bits".into(), pack_bits(data.labels.iter().map(|&y| y > 0.5))[..8].to_vec()));
    for c in &captured {
        assert!(allowed(&c.from, &c.to, c.kind), "{} from {} to {}", c.kind, c.from, c.to);
        for (what, needle) in &needles {
            assert!(!contains(&c.bytes, needle), "{what} found in a {} message from {} to {}", c.kind, c.from, c.to);
        }
        let envelope: Envelope = postcard::from_bytes(&c.bytes).unwrap();
        if let Message::LrDecrypted { values, .. } = envelope.message {
            assert!(values.iter().all(|v| v.unsigned_abs() > 1 << 64), "decrypted gradient sums are masked");
        }
    }
}
