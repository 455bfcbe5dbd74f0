//! How simulated devices move: vehicles drive a street grid, body cameras walk, sensors stay
//! put. Pure and seeded: a step takes the elapsed time and a random source, and returns the
//! new position, so routes are reproducible and testable.

use rand::Rng;

/// Metres per degree of latitude (and of longitude at the equator).
const M_PER_DEG: f64 = 111_320.0;
/// Spacing of the simulated street grid, metres.
const BLOCK_M: f64 = 420.0;
/// How far from the centre the grid extends, in blocks.
const GRID_RADIUS: i32 = 12;

/// The kinds of simulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vehicle,
    Bodycam,
    Sensor,
}

impl Kind {
    /// The fleet mix: six vehicles, two body cameras and two sensors in every ten devices.
    pub fn for_index(index: u32) -> Self {
        match index % 10 {
            0..=5 => Kind::Vehicle,
            6 | 7 => Kind::Bodycam,
            _ => Kind::Sensor,
        }
    }

    pub fn wire_name(self) -> &'static str {
        match self {
            Kind::Vehicle => "vehicle",
            Kind::Bodycam => "bodycam",
            Kind::Sensor => "sensor",
        }
    }
}

/// A position and motion in local metres around the fleet centre.
#[derive(Debug, Clone)]
pub struct Motion {
    kind: Kind,
    center: (f64, f64),
    /// East, north offsets from the centre, metres.
    x: f64,
    y: f64,
    heading_deg: f64,
    speed: f64,
    /// Vehicles: the grid node being driven to.
    target: (i32, i32),
    /// Vehicles: seconds left standing at a junction.
    waiting_s: f64,
}

/// A position report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub lat: f64,
    pub lon: f64,
    pub heading: f64,
    pub speed: f64,
}

impl Motion {
    /// A device placed at random within the grid.
    pub fn new(kind: Kind, center: (f64, f64), rng: &mut impl Rng) -> Self {
        let node = (
            rng.random_range(-GRID_RADIUS..=GRID_RADIUS),
            rng.random_range(-GRID_RADIUS..=GRID_RADIUS),
        );
        let (mut x, mut y) = (f64::from(node.0) * BLOCK_M, f64::from(node.1) * BLOCK_M);
        if kind != Kind::Vehicle {
            // Walkers and sensors sit inside blocks, not on the junctions.
            x += rng.random_range(20.0..BLOCK_M - 20.0);
            y += rng.random_range(20.0..BLOCK_M - 20.0);
        }
        Self {
            kind,
            center,
            x,
            y,
            heading_deg: rng.random_range(0.0..360.0),
            speed: 0.0,
            target: node,
            waiting_s: 0.0,
        }
    }

    /// Advances `dt_s` seconds and returns the new report.
    pub fn step(&mut self, dt_s: f64, rng: &mut impl Rng) -> Sample {
        match self.kind {
            Kind::Vehicle => self.drive(dt_s, rng),
            Kind::Bodycam => self.walk(dt_s, rng),
            Kind::Sensor => self.speed = 0.0,
        }
        self.sample()
    }

    pub fn sample(&self) -> Sample {
        let lat = self.center.0 + self.y / M_PER_DEG;
        let lon = self.center.1 + self.x / (M_PER_DEG * self.center.0.to_radians().cos());
        Sample {
            lat,
            lon,
            heading: self.heading_deg.rem_euclid(360.0),
            speed: self.speed,
        }
    }

    fn drive(&mut self, dt_s: f64, rng: &mut impl Rng) {
        let mut left = dt_s;
        while left > 0.0 {
            if self.waiting_s > 0.0 {
                let wait = self.waiting_s.min(left);
                self.waiting_s -= wait;
                left -= wait;
                self.speed = 0.0;
                continue;
            }
            let (tx, ty) = (
                f64::from(self.target.0) * BLOCK_M,
                f64::from(self.target.1) * BLOCK_M,
            );
            let (dx, dy) = (tx - self.x, ty - self.y);
            let dist = dx.hypot(dy);
            if dist < 0.5 {
                self.choose_next_junction(rng);
                continue;
            }
            if self.speed < 1.0 {
                self.speed = rng.random_range(7.0..15.0); // 25 to 55 km/h in town
            }
            self.heading_deg = dx.atan2(dy).to_degrees();
            let travel = (self.speed * left).min(dist);
            self.x += dx / dist * travel;
            self.y += dy / dist * travel;
            left -= travel / self.speed;
        }
    }

    fn choose_next_junction(&mut self, rng: &mut impl Rng) {
        if rng.random_bool(0.25) {
            self.waiting_s = rng.random_range(5.0..40.0); // lights, a stop, a call
        }
        let back = self.heading_deg.to_radians();
        let came_from = (-back.sin().round() as i32, -back.cos().round() as i32);
        let options: Vec<(i32, i32)> = [(1, 0), (-1, 0), (0, 1), (0, -1)]
            .into_iter()
            .filter(|&d| d != came_from || rng.random_bool(0.05))
            .filter(|d| {
                (self.target.0 + d.0).abs() <= GRID_RADIUS
                    && (self.target.1 + d.1).abs() <= GRID_RADIUS
            })
            .collect();
        let d = options
            .get(rng.random_range(0..options.len().max(1)))
            .copied()
            .unwrap_or((-came_from.0, -came_from.1));
        self.target = (self.target.0 + d.0, self.target.1 + d.1);
    }

    fn walk(&mut self, dt_s: f64, rng: &mut impl Rng) {
        self.heading_deg += rng.random_range(-25.0..25.0);
        self.speed = if rng.random_bool(0.1) {
            0.0
        } else {
            rng.random_range(0.8..1.8)
        };
        let limit = f64::from(GRID_RADIUS) * BLOCK_M;
        let h = self.heading_deg.to_radians();
        self.x = (self.x + h.sin() * self.speed * dt_s).clamp(-limit, limit);
        self.y = (self.y + h.cos() * self.speed * dt_s).clamp(-limit, limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn vehicles_move_at_town_speeds_and_stay_in_the_area() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut m = Motion::new(Kind::Vehicle, (51.92, 4.48), &mut rng);
        let mut prev = m.sample();
        let mut moved = 0.0;
        for _ in 0..600 {
            let s = m.step(1.0, &mut rng);
            let d = ((s.lat - prev.lat) * M_PER_DEG)
                .hypot((s.lon - prev.lon) * M_PER_DEG * 51.92f64.to_radians().cos());
            assert!(d <= 15.0 + 1e-6, "one second at most 15 m/s, moved {d} m");
            assert!(
                (s.lat - 51.92).abs() < 0.06 && (s.lon - 4.48).abs() < 0.09,
                "stays within the grid"
            );
            moved += d;
            prev = s;
        }
        assert!(
            moved > 1000.0,
            "ten minutes of driving covers ground, got {moved} m"
        );
    }

    #[test]
    fn sensors_do_not_move() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut m = Motion::new(Kind::Sensor, (0.0, 0.0), &mut rng);
        let first = m.sample();
        assert_eq!(
            m.step(10.0, &mut rng),
            Sample {
                speed: 0.0,
                ..first
            }
        );
    }
}
