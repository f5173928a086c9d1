//! Bar charts drawn on the server as SVG: no script, no library, readable by screen readers
//! (a title, and each bar's value in its own `<title>`), and the same figures in a table next
//! to them for anyone who cannot see the chart.

use maud::{Markup, html};

const WIDTH: i64 = 720;
const HEIGHT: i64 = 220;
/// Room for the axis labels.
const MARGIN_LEFT: i64 = 64;
const MARGIN_BOTTOM: i64 = 36;
const MARGIN_TOP: i64 = 12;

/// One bar per `(label, value)`; negative values are drawn as zero. `show` writes a value as
/// people read it (a count, money).
pub fn bars(title: &str, bars: &[(String, i64)], show: impl Fn(i64) -> String) -> Markup {
    let plot_width = WIDTH - MARGIN_LEFT - 8;
    let plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let max = bars
        .iter()
        .map(|(_, value)| *value)
        .max()
        .unwrap_or(0)
        .max(1);
    let count = i64::try_from(bars.len()).unwrap_or(i64::MAX).max(1);
    let slot = (plot_width / count).max(1);
    let bar_width = (slot * 3 / 4).max(1);
    // Label about every 7th bar, so dates stay readable.
    let label_every = usize::try_from((count + 6) / 7).unwrap_or(1).max(1);
    let baseline = MARGIN_TOP + plot_height;
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title)
                xmlns="http://www.w3.org/2000/svg" {
                title { (title) }
                // Explicit end tags: inside HTML, an SVG element written `<line>` would swallow
                // everything after it.
                line x1=(MARGIN_LEFT) y1=(baseline) x2=(WIDTH - 4) y2=(baseline) stroke="#1a1a1a" {}
                line x1=(MARGIN_LEFT) y1=(MARGIN_TOP) x2=(MARGIN_LEFT) y2=(baseline) stroke="#1a1a1a" {}
                text x=(MARGIN_LEFT - 6) y=(MARGIN_TOP + 10) text-anchor="end" font-size="12" fill="#1a1a1a" { (show(max)) }
                text x=(MARGIN_LEFT - 6) y=(baseline) text-anchor="end" font-size="12" fill="#1a1a1a" { (show(0)) }
                @for (index, (label, value)) in bars.iter().enumerate() {
                    @let x = MARGIN_LEFT + 4 + i64::try_from(index).unwrap_or(0) * slot;
                    @let height = (*value).max(0) * plot_height / max;
                    rect x=(x) y=(baseline - height) width=(bar_width) height=(height) fill="#0b4f9c" {
                        title { (label) ": " (show(*value)) }
                    }
                    @if index % label_every == 0 {
                        text x=(x) y=(baseline + 16) font-size="11" fill="#1a1a1a" { (label) }
                    }
                }
            }
            figcaption.sr-only { (title) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bars;

    #[test]
    fn bars_scale_to_the_largest_value() {
        let svg = bars(
            "meals",
            &[
                ("a".to_owned(), 50),
                ("b".to_owned(), 100),
                ("c".to_owned(), -3),
            ],
            |value| value.to_string(),
        )
        .into_string();
        // Plot height 172: the largest bar fills it, half of it is 86, a negative one is flat.
        assert!(svg.contains(r#"height="172""#), "{svg}");
        assert!(svg.contains(r#"height="86""#), "{svg}");
        assert!(svg.contains(r#"height="0""#), "{svg}");
        assert!(svg.contains("<title>b: 100</title>"), "{svg}");
        assert!(svg.starts_with("<figure"), "{svg}");
        assert_eq!(
            svg.matches("<line").count(),
            svg.matches("</line>").count(),
            "{svg}"
        );
    }

    #[test]
    fn no_bars_draw_an_empty_chart() {
        let svg = bars("empty", &[], |value| value.to_string()).into_string();
        assert!(!svg.contains("<rect"), "{svg}");
    }
}
