//! The dashboard's chart: conversions per hour over 7 days as a stacked bar
//! chart in server-rendered SVG (no script, styled by the site's
//! stylesheet through classes: the content security policy allows no
//! inline style).

use std::fmt::Write as _;

use shared::db::website::dashboard::HourCounts;

/// Width of one hour's bar, in the SVG's units.
const BAR: usize = 5;
/// Height of the plot area.
const PLOT: f64 = 160.0;
/// Left margin (the scale) and bottom margin (the day labels).
const LEFT: usize = 40;
const BOTTOM: usize = 24;

/// The SVG of `hours` (oldest first). Each bar has a `<title>` (its hour
/// and counts) for hover and screen readers.
pub fn svg(hours: &[HourCounts]) -> String {
    let max = hours
        .iter()
        .map(|h| h.delivered + h.rejected + h.dead_lettered)
        .max()
        .unwrap_or(0)
        .max(1);
    // Room on the right for the last day label.
    let width = LEFT + hours.len() * BAR + 24;
    let height = PLOT as usize + BOTTOM + 8;
    let mut s = String::with_capacity(hours.len() * 200);
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">Conversions per hour over the last 7 days: delivered, rejected by impact.com, dead-lettered</title>"
    );
    // Scale: 0, half and the maximum.
    for (value, y) in [(0, PLOT + 4.0), (max / 2, PLOT / 2.0 + 4.0), (max, 4.0)] {
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{width}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{value}</text>",
            LEFT - 4,
            y + 3.0
        );
    }
    for (i, h) in hours.iter().enumerate() {
        let x = LEFT + i * BAR;
        let mut base = PLOT + 4.0;
        let tip = format!(
            "{} UTC: {} delivered, {} rejected, {} dead-lettered",
            h.hour.get(..16).unwrap_or(&h.hour).replace('T', " "),
            h.delivered,
            h.rejected,
            h.dead_lettered
        );
        let _ = write!(s, "<g><title>{tip}</title>");
        for (class, n) in [
            ("delivered", h.delivered),
            ("rejected", h.rejected),
            ("dead", h.dead_lettered),
        ] {
            if n == 0 {
                continue;
            }
            let tall = (n as f64 / max as f64 * PLOT).max(1.0);
            base -= tall;
            let _ = write!(
                s,
                "<rect class=\"bar-{class}\" x=\"{x}\" y=\"{base:.1}\" width=\"{}\" height=\"{tall:.1}\"/>",
                BAR - 1
            );
        }
        // A transparent full-height target, so the hour's title shows on hover.
        let _ = write!(
            s,
            "<rect class=\"hover\" x=\"{x}\" y=\"4\" width=\"{BAR}\" height=\"{PLOT}\"/></g>"
        );
        // A day label at each midnight (UTC).
        if h.hour.get(11..13) == Some("00") {
            let _ = write!(
                s,
                "<line class=\"day\" x1=\"{x}\" x2=\"{x}\" y1=\"4\" y2=\"{:.1}\"/>\
                 <text class=\"axis\" x=\"{}\" y=\"{}\">{}</text>",
                PLOT + 8.0,
                x + 2,
                PLOT as usize + 20,
                h.hour.get(5..10).unwrap_or_default()
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(h: &str, d: i64, r: i64, x: i64) -> HourCounts {
        HourCounts {
            hour: h.into(),
            delivered: d,
            rejected: r,
            dead_lettered: x,
        }
    }

    #[test]
    fn bars_stack_in_proportion_and_carry_their_counts() {
        let svg = svg(&[
            hour("2026-12-04T23:00:00.000Z", 0, 0, 0),
            hour("2026-12-05T00:00:00.000Z", 2, 1, 1),
        ]);
        // The tallest hour fills the plot: 2/4, 1/4 and 1/4 of 160.
        assert!(
            svg.contains("class=\"bar-delivered\" x=\"45\" y=\"84.0\" width=\"4\" height=\"80.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"bar-rejected\" x=\"45\" y=\"44.0\" width=\"4\" height=\"40.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"bar-dead\" x=\"45\" y=\"4.0\" width=\"4\" height=\"40.0\""),
            "{svg}"
        );
        assert!(svg.contains(
            "<title>2026-12-05 00:00 UTC: 2 delivered, 1 rejected, 1 dead-lettered</title>"
        ));
        assert!(svg.contains(">12-05</text>"), "midnight is labelled");
        assert!(!svg.contains("style="), "no inline style (CSP)");
    }

    #[test]
    fn an_empty_week_draws_no_bar() {
        let svg = svg(&[hour("2026-12-04T23:00:00.000Z", 0, 0, 0)]);
        assert!(!svg.contains("bar-"), "{svg}");
    }
}
