// Annotation outline -> filled head mask.
//
// An HC18 annotation is the sonographer's ellipse drawn as a thin (2-3 px) line of 255 on 0, and the
// head is the line plus everything it encloses. We fill it through the ellipse itself: fit the
// least-squares ellipse to the line's pixel centres (the same fit that reproduces the CSV's HC), and
// mark every pixel whose centre lies inside it, plus the line pixels. Unlike a flood fill this is
// indifferent to gaps of any size and to ellipses cut by the frame border (5 of the 999 outlines
// run off the frame; a flood from the border leaks into those). On the 995 closed outlines it
// differs from a flood fill of the outline's outside by 37 pixels in total (measured once).
import Foundation
import ImageCodecs

/// The filled head (1) / background (0) mask of an outline image (line pixels are those >= 128);
/// nil when the outline does not determine an ellipse.
public func filledMask(outline: GrayImage) -> [UInt8]? {
    guard let ellipse = fitEllipse(outlinePoints(outline)) else { return nil }
    return rasterizeEllipse(ellipse, width: outline.width, height: outline.height, plus: outline)
}

/// 1 for each pixel whose centre (x, y integers) lies strictly inside `ellipse`, or whose `plus`
/// value is >= 128; 0 elsewhere.
public func rasterizeEllipse(_ ellipse: Ellipse, width: Int, height: Int, plus extra: GrayImage? = nil) -> [UInt8] {
    var mask = [UInt8](repeating: 0, count: width * height)
    let c = cos(ellipse.angle), s = sin(ellipse.angle)
    let inverseA2 = 1 / (ellipse.semiMajor * ellipse.semiMajor), inverseB2 = 1 / (ellipse.semiMinor * ellipse.semiMinor)
    for y in 0..<height {
        let dy = Double(y) - ellipse.centerY
        for x in 0..<width {
            let dx = Double(x) - ellipse.centerX
            let u = dx * c + dy * s, v = dy * c - dx * s
            if u * u * inverseA2 + v * v * inverseB2 < 1 { mask[y * width + x] = 1 }
        }
    }
    if let extra {
        for i in 0..<mask.count where extra.pixels[i] >= 128 { mask[i] = 1 }
    }
    return mask
}
