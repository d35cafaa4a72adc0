import XCTest
import QuantEngine
import TestSupport

final class GraphTests: XCTestCase {
    func testParameterCountsMatchThePaper() {
        let g = ModelGraph.mobileNetV2UNet()
        XCTAssertEqual(g.totalParameterCount, 6_628_945)
        XCTAssertEqual(g.parameterCount(groups: [.encoder]), 2_223_872)
        let decoder: Set<ParameterGroup> = [.decoderBlock(0), .decoderBlock(1), .decoderBlock(2), .decoderBlock(3), .decoderBlock(4)]
        XCTAssertEqual(g.parameterCount(groups: decoder), 4_404_928)
        XCTAssertEqual(g.parameterCount(groups: [.head]), 145)
        XCTAssertEqual(g.parameterCount(groups: [.decoderBlock(0)]), 3_761_152)
        XCTAssertEqual(g.parameterCount(groups: [.decoderBlock(4)]), 6_976)
    }

    func testConvInputsOfDecoderBlocks() {
        let g = ModelGraph.mobileNetV2UNet()
        let conv1Inputs = g.convs.filter { $0.weightPrefix.hasSuffix("conv1.0") }.map(\.inChannels)
        XCTAssertEqual(conv1Inputs, [1376, 288, 152, 80, 32])
        XCTAssertEqual(g.values[g.output].channels, 1)
        XCTAssertEqual(g.values[g.output].downsample, 1)
    }

    /// The op names both engines' `profile` prints (so a float and an int8 profile line up).
    func testOpDescriptions() {
        let g = ModelGraph.mobileNetV2UNet()
        XCTAssertEqual(g.describeOp(0, width: 192, height: 128), "encoder.features.0.0 conv3x3/2 3->32 out 96x64x32")
        XCTAssertEqual(g.describeOp(0, width: 192, height: 128, convKind: "winograd"), "encoder.features.0.0 winograd3x3/2 3->32 out 96x64x32")
        let baseline = ModelGraph.unetBaseline()
        let firstPool = baseline.ops.firstIndex { if case .maxPool2x2 = $0 { return true } else { return false } }!
        XCTAssertEqual(baseline.describeOp(firstPool, width: 192, height: 128), "maxpool2x2 out 96x64x64")
        let lastOp = baseline.ops.count - 1
        XCTAssertEqual(baseline.describeOp(lastOp, width: 192, height: 128), "final conv1x1/1 64->1 out 192x128x1")
    }

    func testBaselineUNetMatchesThePaperAndPyTorchNames() {
        let g = ModelGraph.unetBaseline()
        XCTAssertEqual(g.totalParameterCount, 31_037_633)
        XCTAssertEqual(g.values[g.output].channels, 1)
        XCTAssertEqual(g.values[g.output].downsample, 1)
        let shapes = Dictionary(uniqueKeysWithValues: g.expectedTensorShapes.map { ($0.name, $0.shape) })
        XCTAssertEqual(shapes["enc.0.0.weight"], [64, 3, 3, 3])
        XCTAssertEqual(shapes["enc.3.4.running_var"], [512])
        XCTAssertEqual(shapes["bott.3.weight"], [1024, 1024, 3, 3])
        XCTAssertEqual(shapes["dec.0.up.weight"], [1024, 512, 2, 2])  // ConvTranspose2d stores [in, out, k, k]
        XCTAssertEqual(shapes["dec.0.up.bias"], [512])
        XCTAssertEqual(shapes["dec.0.conv.0.weight"], [512, 1024, 3, 3])
        XCTAssertEqual(shapes["dec.3.conv.4.weight"], [64])
        XCTAssertEqual(shapes["final.weight"], [1, 64, 1, 1])
        XCTAssertEqual(shapes.count, 4 * 10 + 10 + 4 * 12 + 2)
        XCTAssertEqual(Architecture(rawValue: "unet-baseline")?.graph(), g)
    }

    /// `latency --profile`: one row per op for both engines, named as `describeOp` names it, with a time.
    /// The engines' one memory plan: no two values that are alive at once share memory (an op's output never
    /// overlaps its inputs, nor anything still to be read), ranges are aligned, and values that never share
    /// memory need no border re-zeroing.
    func testArenaPlanNeverOverlapsLiveValues() {
        for graph in [ModelGraph.mobileNetV2UNet(inputChannels: 1), .unetBaseline(inputChannels: 1)] {
            let sizes = graph.values.map { ($0.channels * 1000) / ($0.downsample * $0.downsample) + 3 }
            let plan = graph.arenaPlan(storage: { sizes[$0] }, alignment: 16)
            let lastUse = graph.lastUse
            // Value v is alive from the step that writes it (0: the input) through its last reader.
            var born = [Int](repeating: 0, count: graph.values.count)
            for (index, op) in graph.ops.enumerated() { born[op.output] = index + 1 }
            func range(_ v: Int) -> Range<Int> { plan.offsets[v]..<(plan.offsets[v] + sizes[v]) }
            for a in graph.values.indices {
                XCTAssertEqual(plan.offsets[a] % 16, 0)
                XCTAssertLessThanOrEqual(range(a).upperBound, plan.size)
                for b in graph.values.indices where a < b && range(a).overlaps(range(b)) {
                    // b is written at step born[b] (op born[b] - 1); a must be dead by then: its last reader ran before.
                    XCTAssertLessThan(lastUse[a], born[b] - 1, "\(graph.architecture): values \(a) and \(b) share memory while both alive")
                    XCTAssertTrue(plan.sharesMemory[a] && plan.sharesMemory[b])
                }
            }
            // Memory is reused: the arena is well below the sum of all values.
            XCTAssertLessThan(plan.size, sizes.reduce(0, +) / 2)
        }
    }

    func testProfileTimesEveryOpOfBothEngines() throws {
        let input = Tensor(shape: [1, 1, 64, 64], data: (0..<(64 * 64)).map { Float($0 % 251) / 255 })
        for path in [Fixtures.packageRoot + "/models/D-all.int8.safetensors", Fixtures.path("pytorch_D-all_192x128.safetensors")] {
            let model = try loadSegmentationModel(path: path)
            let rows = try model.profile(input, threads: 1, repeats: 1)
            XCTAssertEqual(rows.count, model.graph.ops.count, path)
            XCTAssertEqual(rows.first?.op.hasPrefix(model.graph.describeOp(0, width: 64, height: 64).prefix(20)), true, path)
            XCTAssertTrue(rows.allSatisfy { $0.milliseconds >= 0 && $0.milliseconds.isFinite }, path)
        }
    }
}
