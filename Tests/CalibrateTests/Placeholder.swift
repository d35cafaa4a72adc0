import XCTest

final class PlaceholderCalibrateTests: XCTestCase {
    func testBuilds() {}
}
