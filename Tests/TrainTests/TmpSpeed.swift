import QuantEngine
import Train
import XCTest
import Foundation
final class TmpSpeedTests: XCTestCase {
    func testSpeed() throws {
        setGemmThreads(2)
        let weights = try Initialization.initialWeights(initPath: nil, randomEncoder: true, seed: 0)
        var rng = SplitMix64(seed: 1)
        let input = Tensor(shape: [10, 3, 128, 192], data: (0..<(10*3*128*192)).map { _ in rng.uniform() })
        let target = Tensor(shape: [10, 1, 128, 192], data: (0..<(10*128*192)).map { _ in rng.uniform() < 0.3 ? 1 : 0 })
        for (name, groups) in [("full-ft", try Strategy.preset("full-ft").trainable), ("D-all", try Strategy.preset("D-all").trainable)] {
            let model = TrainableUNet(weights: weights, trainable: groups)
            var adam = Adam(learningRate: 1e-4)
            for i in 0..<3 {
                let t0 = Date()
                _ = model.lossAndGradients(input: input, targets: target, threads: 2)
                adam.update(model.trainableParameters)
                print("SPEED \(name) step \(i): \(Date().timeIntervalSince(t0)) s = \(10 / Date().timeIntervalSince(t0)) images/s")
            }
        }
    }
}
