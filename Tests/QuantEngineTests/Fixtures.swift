import Foundation
import QuantEngine
import TestSupport

extension Fixtures {
    /// The trained D-all model, loaded once for all tests.
    static let dAllModel: FloatUNet = {
        let weights = try! ModelWeights(loading: path("pytorch_D-all_192x128.safetensors"), graph: .mobileNetV2UNet())
        return FloatUNet(weights: weights)
    }()
}
