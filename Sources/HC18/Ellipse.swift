// Least-squares ellipse fitting and the ellipse's circumference.
//
// The fit is Fitzgibbon, Pilu & Fisher's direct least-squares ellipse fit ("Direct least square
// fitting of ellipses", PAMI 1999) in the numerically stable form of Halir & Flusser (1998): minimise
// the algebraic distance sum (a x^2 + b xy + c y^2 + d x + e y + f)^2 subject to 4ac - b^2 = 1, which
// always yields an ellipse. The points are first centred and scaled to unit RMS radius so the scatter
// matrices stay well conditioned for frames of any size.
import Foundation

/// An ellipse: centre, semi-axes (semiMajor >= semiMinor) and the major axis' angle from +x
/// (radians, in [0, pi); y grows downwards in image coordinates, so positive angles turn clockwise on screen).
public struct Ellipse: Equatable, Codable, Sendable {
    public var centerX: Double
    public var centerY: Double
    public var semiMajor: Double
    public var semiMinor: Double
    public var angle: Double

    public init(centerX: Double, centerY: Double, semiMajor: Double, semiMinor: Double, angle: Double) {
        self.centerX = centerX
        self.centerY = centerY
        self.semiMajor = semiMajor
        self.semiMinor = semiMinor
        self.angle = angle
    }

    /// Ramanujan's second approximation of the perimeter (relative error of order h^5, far below 1e-6
    /// for head shapes):
    /// pi (a + b) (1 + 3h / (10 + sqrt(4 - 3h))), h = ((a - b) / (a + b))^2.
    public var circumference: Double {
        let a = semiMajor, b = semiMinor
        let h = ((a - b) * (a - b)) / ((a + b) * (a + b))
        return Double.pi * (a + b) * (1 + 3 * h / (10 + (4 - 3 * h).squareRoot()))
    }

    /// (x/a)^2 + (y/b)^2 in the ellipse's own frame: < 1 inside, 1 on the curve, > 1 outside.
    public func normalizedRadiusSquared(x: Double, y: Double) -> Double {
        let dx = x - centerX, dy = y - centerY
        let c = cos(angle), s = sin(angle)
        let u = dx * c + dy * s, v = -dx * s + dy * c
        return (u * u) / (semiMajor * semiMajor) + (v * v) / (semiMinor * semiMinor)
    }
}

/// The direct least-squares ellipse through `points` (x, y), or nil when there are fewer than 6
/// points or they do not determine an ellipse (collinear, degenerate).
public func fitEllipse(_ points: [(x: Double, y: Double)]) -> Ellipse? {
    guard points.count >= 6 else { return nil }
    // Centre and scale for conditioning.
    var meanX = 0.0, meanY = 0.0
    for p in points { meanX += p.x; meanY += p.y }
    meanX /= Double(points.count); meanY /= Double(points.count)
    var spread = 0.0
    for p in points { spread += (p.x - meanX) * (p.x - meanX) + (p.y - meanY) * (p.y - meanY) }
    let scale = (spread / Double(points.count)).squareRoot()
    guard scale > 0, scale.isFinite else { return nil }

    // Scatter matrices of the quadratic part D1 = [x^2, xy, y^2] and linear part D2 = [x, y, 1].
    var s1 = [[Double]](repeating: [0, 0, 0], count: 3)
    var s2 = s1, s3 = s1
    for p in points {
        let x = (p.x - meanX) / scale, y = (p.y - meanY) / scale
        let q = [x * x, x * y, y * y], l = [x, y, 1.0]
        for i in 0..<3 {
            for j in 0..<3 {
                s1[i][j] += q[i] * q[j]
                s2[i][j] += q[i] * l[j]
                s3[i][j] += l[i] * l[j]
            }
        }
    }
    // T = -S3^-1 S2^T gives the linear coefficients from the quadratic ones.
    guard let s3Inverse = invert3x3(s3) else { return nil }
    var t = [[Double]](repeating: [0, 0, 0], count: 3)
    for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { t[i][j] -= s3Inverse[i][k] * s2[j][k] } } }
    // Reduced scatter M = S1 + S2 T, then premultiplied by the inverse constraint matrix
    // C1^-1 = [[0, 0, 1/2], [0, -1, 0], [1/2, 0, 0]].
    var m = s1
    for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { m[i][j] += s2[i][k] * t[k][j] } } }
    let reduced = [m[2].map { $0 / 2 }, m[1].map { -$0 }, m[0].map { $0 / 2 }]

    // The solution is the eigenvector of `reduced` with 4ac - b^2 > 0 (exactly one exists).
    var best: [Double]? = nil
    for lambda in realEigenvalues3x3(reduced) {
        guard let v = nullVector3x3(reduced, lambda) else { continue }
        let constraint = 4 * v[0] * v[2] - v[1] * v[1]
        if constraint > 0 { best = v; break }
    }
    guard let quadratic = best else { return nil }
    var linear = [0.0, 0.0, 0.0]
    for i in 0..<3 { for k in 0..<3 { linear[i] += t[i][k] * quadratic[k] } }
    return ellipseFromConic(a: quadratic[0], b: quadratic[1], c: quadratic[2], d: linear[0], e: linear[1], f: linear[2])
        .map { e in
            Ellipse(centerX: e.centerX * scale + meanX, centerY: e.centerY * scale + meanY,
                    semiMajor: e.semiMajor * scale, semiMinor: e.semiMinor * scale, angle: e.angle)
        }
}

/// Centre, axes and angle of the conic a x^2 + b xy + c y^2 + d x + e y + f = 0, if it is a real ellipse.
func ellipseFromConic(a: Double, b: Double, c: Double, d: Double, e: Double, f: Double) -> Ellipse? {
    let determinant = 4 * a * c - b * b
    guard determinant > 0 else { return nil }
    // The centre is where the gradient vanishes: [2a b; b 2c] [x y]^T = -[d e]^T.
    let x0 = (b * e - 2 * c * d) / determinant
    let y0 = (b * d - 2 * a * e) / determinant
    let valueAtCentre = a * x0 * x0 + b * x0 * y0 + c * y0 * y0 + d * x0 + e * y0 + f
    // Eigenvalues of the quadratic form [[a, b/2], [b/2, c]].
    let mean = (a + c) / 2
    let radius = (((a - c) / 2) * ((a - c) / 2) + (b / 2) * (b / 2)).squareRoot()
    let small = mean - radius, large = mean + radius
    // Same sign as both eigenvalues is required for the set to be non-empty: -valueAtCentre / lambda > 0.
    let major2 = -valueAtCentre / small, minor2 = -valueAtCentre / large
    guard major2 > 0, minor2 > 0, major2.isFinite, minor2.isFinite else { return nil }
    // The major axis follows the eigenvector of the smaller eigenvalue (in magnitude, as both share a sign).
    let (longAxisLambda, semiMajor, semiMinor) = abs(small) <= abs(large)
        ? (small, major2.squareRoot(), minor2.squareRoot())
        : (large, minor2.squareRoot(), major2.squareRoot())
    // Eigenvector of [[a, b/2], [b/2, c]] for longAxisLambda.
    let angle: Double
    if abs(b) > 1e-300 {
        angle = atan2(longAxisLambda - a, b / 2)
    } else {
        angle = abs(a - longAxisLambda) < abs(c - longAxisLambda) ? 0 : Double.pi / 2
    }
    // An axis has no direction: report the angle in [0, pi).
    var axisAngle = angle.truncatingRemainder(dividingBy: Double.pi)
    if axisAngle < 0 { axisAngle += Double.pi }
    return Ellipse(centerX: x0, centerY: y0, semiMajor: max(semiMajor, semiMinor),
                   semiMinor: min(semiMajor, semiMinor), angle: axisAngle)
}

private func invert3x3(_ m: [[Double]]) -> [[Double]]? {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1]
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2]
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0]
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02
    guard det != 0, det.isFinite else { return nil }
    return [
        [c00 / det, (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det, (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det],
        [c01 / det, (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det, (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det],
        [c02 / det, (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det, (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det],
    ]
}

/// Real roots of the characteristic polynomial det(M - lambda I) of a 3x3 matrix.
private func realEigenvalues3x3(_ m: [[Double]]) -> [Double] {
    // lambda^3 - p2 lambda^2 + p1 lambda - p0 = 0
    let p2 = m[0][0] + m[1][1] + m[2][2]
    let p1 = m[0][0] * m[1][1] - m[0][1] * m[1][0] + m[0][0] * m[2][2] - m[0][2] * m[2][0]
        + m[1][1] * m[2][2] - m[1][2] * m[2][1]
    let p0 = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    // Depressed cubic t^3 + p t + q with lambda = t + p2 / 3.
    let shift = p2 / 3
    let p = p1 - p2 * p2 / 3
    let q = -2 * p2 * p2 * p2 / 27 + p2 * p1 / 3 - p0
    var roots: [Double]
    let discriminant = q * q / 4 + p * p * p / 27
    if p < 0 && discriminant <= 0 {
        // Three real roots (trigonometric form).
        let r = (-p / 3).squareRoot()
        let phi = acos(max(-1, min(1, -q / (2 * r * r * r))))
        roots = (0..<3).map { k in 2 * r * cos((phi - 2 * Double.pi * Double(k)) / 3) }
    } else {
        let sq = max(0, discriminant).squareRoot()
        roots = [cbrt(-q / 2 + sq) + cbrt(-q / 2 - sq)]
    }
    return roots.map { refineEigenvalue(m, $0 + shift, p2: p2, p1: p1, p0: p0) }
}

/// Two Newton steps on the characteristic polynomial polish a root found in closed form.
private func refineEigenvalue(_ m: [[Double]], _ lambda: Double, p2: Double, p1: Double, p0: Double) -> Double {
    var x = lambda
    for _ in 0..<2 {
        let value = ((x - p2) * x + p1) * x - p0
        let slope = (3 * x - 2 * p2) * x + p1
        if slope == 0 { break }
        x -= value / slope
    }
    return x
}

/// A unit vector v with (M - lambda I) v = 0: the largest cross product of two rows of M - lambda I.
private func nullVector3x3(_ m: [[Double]], _ lambda: Double) -> [Double]? {
    var a = m
    for i in 0..<3 { a[i][i] -= lambda }
    func cross(_ u: [Double], _ v: [Double]) -> [Double] {
        [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]
    }
    let candidates = [cross(a[0], a[1]), cross(a[0], a[2]), cross(a[1], a[2])]
    let norms = candidates.map { ($0[0] * $0[0] + $0[1] * $0[1] + $0[2] * $0[2]).squareRoot() }
    guard let bestIndex = norms.indices.max(by: { norms[$0] < norms[$1] }), norms[bestIndex] > 0 else { return nil }
    return candidates[bestIndex].map { $0 / norms[bestIndex] }
}
