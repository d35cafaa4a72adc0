import Foundation
import QuantEngine
import XCTest
import TestSupport

/// Paths of the repository's fixtures (found from this file, so tests run from anywhere).
enum DeployFixtures {
    static let frames = Fixtures.hc18Frames
    static let pixelCSV = Fixtures.path("hc18/training_set/training_set_pixel_size_and_HC.csv")

    /// The trained D-all float model (PyTorch reference weights), loaded once.
    static let dAll: SegmentationModel = {
        try! loadSegmentationModel(path: Fixtures.path("pytorch_D-all_192x128.safetensors"))
    }()
}

/// A model that needs no weights: predicts head inside a fixed ellipse (in network pixels), or nowhere.
final class StubModel: SegmentationModel {
    let precision = Precision.float32  // a stand-in: no engine runs
    let graph = ModelGraph.mobileNetV2UNet(inputChannels: 1)
    /// (centre x, centre y, semi-axis x, semi-axis y) as fractions of the network size; nil = no head.
    let head: (Double, Double, Double, Double)?

    init(head: (Double, Double, Double, Double)?) { self.head = head }

    func logits(for input: Tensor, threads: Int) throws -> Tensor {
        let (h, w) = (input.shape[2], input.shape[3])
        var out = [Float](repeating: -5, count: h * w)
        if let (cx, cy, ax, ay) = head {
            for y in 0..<h {
                for x in 0..<w {
                    let u = (Double(x) + 0.5 - cx * Double(w)) / (ax * Double(w))
                    let v = (Double(y) + 0.5 - cy * Double(h)) / (ay * Double(h))
                    if u * u + v * v < 1 { out[y * w + x] = 5 }
                }
            }
        }
        return Tensor(shape: [1, 1, h, w], data: out)
    }
}
