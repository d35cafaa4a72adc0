import XCTest

final class PlaceholderHC18Tests: XCTestCase {
    func testBuilds() {}
}
