// Test frames with the prediction and the truth drawn on them (PNG), for the report.
import Deploy
import HC18
import ImageCodecs
import QuantEngine

/// Colour of the sonographer's (true) ellipse; the predicted one is `segment`'s green.
let trueEllipseColor: (UInt8, UInt8, UInt8) = (0, 160, 255)

/// The original frame with the predicted head region tinted and the predicted ellipse in green (as
/// `segment` draws them), plus the ellipse fitted to the annotation outline in blue.
func drawPredictionFrame(model: SegmentationModel, prepared: PreparedSample, row: EvaluationRow, to path: String) throws {
    let frame = try readGrayImage(path: prepared.sample.imagePath)
    let logits = try model.logits(for: Tensor(shape: [1, 1, prepared.height, prepared.width], data: prepared.image), threads: 1)
    // Nearest-neighbour from the network's WxH back to the frame's size: the mask is shown as predicted.
    var mask = [UInt8](repeating: 0, count: frame.width * frame.height)
    for y in 0..<frame.height {
        let sy = y * prepared.height / frame.height
        for x in 0..<frame.width where logits.data[sy * prepared.width + x * prepared.width / frame.width] > 0 {
            mask[y * frame.width + x] = 1
        }
    }
    var image = drawOverlay(frame: frame, mask: mask, ellipse: row.ellipse)
    if let truth = measureOutlineHC(outline: try readGrayImage(path: prepared.sample.annotationPath),
                                    pixelSizeMM: prepared.sample.pixelSizeMM) {
        drawEllipse(truth.ellipse, on: &image, color: trueEllipseColor, radius: max(0, frame.width / 500))
    }
    try writePNG(image, to: path)
}
