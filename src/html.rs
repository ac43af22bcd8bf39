//! HTML for people: escaping, the page layout shared by the dashboard and the printable
//! evidence pack, and procedure Markdown rendered safely (procedure files are untrusted: raw
//! HTML is shown as text, and links keep only http, https and mailto targets).

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet, served by procbot itself (no CDN), and written for screen and A4 print.
pub const STYLE: &str = r#"
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --ok: #1f7a4d; --warn: #a15c00; --bad: #b42318; --accent: #2f5bd3; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; }
header.top { display: flex; gap: 1.5rem; align-items: baseline; padding: .8rem 1.5rem; border-bottom: 1px solid var(--line); }
header.top strong { font-size: 1.1rem; }
header.top a { color: var(--accent); text-decoration: none; }
main { padding: 1rem 1.5rem 3rem; max-width: 72rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .85rem; }
.ok { color: var(--ok); } .due { color: var(--warn); } .overdue, .pending, .bad { color: var(--bad); }
.muted { color: var(--muted); } code, .hash { font-family: ui-monospace, Menlo, monospace; font-size: .85em; word-break: break-all; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin: 1rem 0; }
form.login { max-width: 22rem; } input, button { font: inherit; padding: .4rem .6rem; }
.procedure-body { border-left: 3px solid var(--line); padding-left: 1rem; }
@media print {
  @page { size: A4; margin: 16mm 14mm; }
  header.top { display: none; } main { padding: 0; max-width: none; } body { font-size: 10.5pt; }
  section.version { break-inside: avoid-page; } a { color: inherit; text-decoration: none; }
}
"#;

/// A whole page: title, navigation (when signed in) and body.
pub fn page(title: &str, navigation: bool, body: &str) -> String {
    let nav = if navigation {
        r#"<a href="/">Overview</a><a href="/people">People</a><a href="/controls">Controls</a><a href="/evidence?format=html">Evidence pack</a><a href="/logout">Sign out</a>"#
    } else {
        ""
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · procbot</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><header class=\"top\"><strong>procbot</strong>{nav}</header><main>{body}</main></body></html>\n",
        escape(title)
    )
}

/// Whether a link target is safe to keep: web and mail links, and links within the page.
fn safe_url(url: &str) -> bool {
    let lowered = url.trim().to_ascii_lowercase();
    lowered.starts_with("https://")
        || lowered.starts_with("http://")
        || lowered.starts_with("mailto:")
        || lowered.starts_with('#')
}

/// A link target as rendered: kept when safe, else a link to nowhere.
fn safe_target(url: CowStr<'_>) -> CowStr<'_> {
    if safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

/// Renders procedure Markdown to HTML that cannot run script: raw HTML becomes visible text,
/// unsafe link and image targets are dropped, images are shown as links.
pub fn markdown(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_target(dest_url),
            title,
            id,
        }),
        // Images could track readers or embed anything: shown as plain links instead.
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: safe_target(dest_url),
            title,
            id,
        }),
        Event::End(pulldown_cmark::TagEnd::Image) => Event::End(pulldown_cmark::TagEnd::Link),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn hostile_markdown_is_rendered_inert() {
        let html = markdown(
            "Hello <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3)) [ok](https://example.com) ![pic](data:text/html,boom)\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("data:text"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.com">ok</a>"#),
            "{html}"
        );
    }
}
