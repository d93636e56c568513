//! What the embedded console answers, and the web code's own checks (type check, i18n parity,
//! chart option builders) run through npm from the build's working copy.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use finpulse_console::{Console, WEB_WORK_DIR};

fn get(console: &Console, path: &str, headers: &[(header::HeaderName, &str)]) -> axum::response::Response {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    console.answer(&Method::GET, path, &map)
}

async fn body(r: axum::response::Response) -> Vec<u8> {
    axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap().to_vec()
}

#[tokio::test]
async fn the_page_deep_links_and_assets_are_served_with_their_headers() {
    let console = Console::embedded();
    assert!(console.built(), "this build has Node.js and npm, so the console must be built");
    let page = get(&console, "/", &[]);
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
    let etag = page.headers()[header::ETAG].to_str().unwrap().to_string();
    let html = String::from_utf8(body(page).await).unwrap();
    assert!(html.contains("<div id=\"app\">"), "{html}");

    // A screen's deep link answers the same page; its router draws the screen.
    let deep = get(&console, "/insights", &[]);
    assert_eq!((deep.status(), deep.headers()[header::ETAG].to_str().unwrap()), (StatusCode::OK, etag.as_str()));
    assert_eq!(get(&console, "/", &[(header::IF_NONE_MATCH, &etag)]).status(), StatusCode::NOT_MODIFIED);

    // The script the page loads: cached for good (its name is its hash), brotli when asked.
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("index.html loads a script").to_string();
    let plain = get(&console, &script, &[]);
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(plain.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(plain.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain_bytes = body(plain).await;
    let plain_len = plain_bytes.len();
    let packed = get(&console, &script, &[(header::ACCEPT_ENCODING, "gzip, deflate, br")]);
    assert_eq!(packed.headers()[header::CONTENT_ENCODING], "br");
    let packed_bytes = body(packed).await;
    let packed_len = packed_bytes.len();
    assert!(packed_len * 2 < plain_len, "brotli {packed_len} bytes against {plain_len}");
    // Every brotli twin is the very file it stands for (made after the bundler's last rewrite),
    // checked with Node's own brotli.
    let dist = std::path::Path::new(WEB_WORK_DIR).parent().unwrap().join("dist");
    let check = r#"const z = require("zlib"), f = require("fs"), p = require("path");
        const walk = (d) => f.readdirSync(d).flatMap((n) => (f.statSync(p.join(d, n)).isDirectory() ? walk(p.join(d, n)) : [p.join(d, n)]));
        let twins = 0;
        for (const br of walk(process.argv[1]).filter((n) => n.endsWith(".br"))) {
          if (!z.brotliDecompressSync(f.readFileSync(br)).equals(f.readFileSync(br.slice(0, -3)))) throw new Error(br + " differs from its file");
          twins++;
        }
        console.log(twins + " twins");"#;
    let out = std::process::Command::new("node").args(["-e", check]).arg(&dist).output().expect("running node");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let served = finpulse_console::ASSETS.iter().filter(|a| a.brotli.is_some()).count();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{served} twins"), "every served twin was checked");
    let refused = get(&console, &script, &[(header::ACCEPT_ENCODING, "br;q=0, gzip")]);
    assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
    println!("console bundle: {plain_len} bytes of script, {packed_len} with brotli");

    // A file that is not there is a 404, not the page; the console takes no writes.
    assert_eq!(get(&console, "/assets/missing.js", &[]).status(), StatusCode::NOT_FOUND);
    assert_eq!(console.answer(&Method::POST, "/", &HeaderMap::new()).status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_binary_built_without_node_says_so_in_both_languages() {
    let console = Console::of(&[], Some("Node.js 20 or later and npm are needed to build it"));
    assert!(!console.built());
    let r = get(&console, "/insights", &[]);
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = String::from_utf8(body(r).await).unwrap();
    assert!(html.contains("运营台未构建") && html.contains("The console was not built"), "{html}");
    assert!(html.contains("Node.js 20 or later and npm are needed"), "{html}");
}

#[test]
fn the_web_code_type_checks_and_its_unit_tests_pass() {
    let out = std::process::Command::new("npm").args(["test"]).current_dir(WEB_WORK_DIR).output().expect("running npm test");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "npm test in {WEB_WORK_DIR} failed:\n{text}");
    assert!(text.contains("passed"), "{text}");
}
