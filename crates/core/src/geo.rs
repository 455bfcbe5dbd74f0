//! Distances and directions on the Earth's surface, as live state and review need them: the
//! spherical formulas (within 0.5% of the ellipsoid), enough for speeds and trips of a fleet.

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// The direction to set out in from the first point to reach the second, in degrees clockwise
/// from true north, `0.0..360.0`.
pub fn initial_bearing_deg(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = (lon2 - lon1).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degree_of_latitude_is_about_111_km() {
        let d = haversine_m(51.0, 4.0, 52.0, 4.0);
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
        assert_eq!(haversine_m(51.0, 4.0, 51.0, 4.0), 0.0);
    }

    #[test]
    fn bearings_point_the_way() {
        let close = |a: f64, b: f64| (a - b).abs() < 0.5;
        assert!(close(initial_bearing_deg(51.0, 4.0, 52.0, 4.0), 0.0));
        assert!(close(initial_bearing_deg(51.0, 4.0, 51.0, 4.1), 90.0));
        assert!(close(initial_bearing_deg(51.0, 4.0, 50.0, 4.0), 180.0));
        assert!(close(initial_bearing_deg(51.0, 4.0, 51.0, 3.9), 270.0));
    }
}
