// The overlay image `segment` writes: the frame in gray, the head region tinted, the fitted ellipse
// drawn as a line about 1/250 of the frame's width thick (at least 1 pixel), and its centre marked.
import Foundation
import HC18
import ImageCodecs

/// Colours of the overlay (RGB).
enum OverlayColor {
    static let ellipse: (UInt8, UInt8, UInt8) = (0, 255, 0)
    static let tint: (UInt8, UInt8, UInt8) = (255, 64, 0)
}

/// `mask`: 0/1 (nonzero = head) at the frame's size; `ellipse` in the frame's pixel coordinates.
public func drawOverlay(frame: GrayImage, mask: [UInt8], ellipse: Ellipse?) -> RGBImage {
    precondition(mask.count == frame.width * frame.height, "drawOverlay: mask does not match the frame")
    var image = RGBImage(gray: frame)
    // Tint the head: 75% frame, 25% colour, so the anatomy stays visible.
    for i in 0..<mask.count where mask[i] != 0 {
        image.pixels[3 * i] = UInt8((3 * Int(image.pixels[3 * i]) + Int(OverlayColor.tint.0)) / 4)
        image.pixels[3 * i + 1] = UInt8((3 * Int(image.pixels[3 * i + 1]) + Int(OverlayColor.tint.1)) / 4)
        image.pixels[3 * i + 2] = UInt8((3 * Int(image.pixels[3 * i + 2]) + Int(OverlayColor.tint.2)) / 4)
    }
    guard let ellipse else { return image }
    drawEllipse(ellipse, on: &image, color: OverlayColor.ellipse, radius: max(0, frame.width / 500))
    return image
}

/// Draws an ellipse outline (in the image's pixel coordinates) and its centre cross in `color`; the line is
/// 2 * radius + 1 pixels thick. `drawOverlay` uses it for the fitted head; bench adds the true ellipse.
public func drawEllipse(_ ellipse: Ellipse, on image: inout RGBImage, color: (UInt8, UInt8, UInt8), radius: Int) {
    // Enough samples that neighbouring points are under half a pixel apart.
    let steps = max(64, Int((2 * ellipse.circumference).rounded(.up)))
    let c = cos(ellipse.angle), s = sin(ellipse.angle)
    for k in 0..<steps {
        let t = 2 * Double.pi * Double(k) / Double(steps)
        let u = ellipse.semiMajor * cos(t), v = ellipse.semiMinor * sin(t)
        stamp(&image, x: ellipse.centerX + u * c - v * s, y: ellipse.centerY + u * s + v * c, radius: radius, color: color)
    }
    // Centre cross, 4 radii long.
    let arm = 3 + 4 * radius
    for d in -arm...arm {
        stamp(&image, x: ellipse.centerX + Double(d), y: ellipse.centerY, radius: radius / 2, color: color)
        stamp(&image, x: ellipse.centerX, y: ellipse.centerY + Double(d), radius: radius / 2, color: color)
    }
}

/// Paints a square of side 2 * radius + 1 around (x, y) in `color`, clipped to the image.
private func stamp(_ image: inout RGBImage, x: Double, y: Double, radius: Int, color: (UInt8, UInt8, UInt8)) {
    // Far outside the frame (or not a number): nothing to paint, and Int() of it would trap.
    guard x.isFinite, y.isFinite, abs(x) < 1e7, abs(y) < 1e7 else { return }
    let cx = Int(x.rounded()), cy = Int(y.rounded())
    for py in (cy - radius)...(cy + radius) where py >= 0 && py < image.height {
        for px in (cx - radius)...(cx + radius) where px >= 0 && px < image.width {
            let i = 3 * (py * image.width + px)
            image.pixels[i] = color.0
            image.pixels[i + 1] = color.1
            image.pixels[i + 2] = color.2
        }
    }
}
