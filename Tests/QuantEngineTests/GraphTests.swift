import XCTest
import QuantEngine

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
}
