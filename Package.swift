// swift-tools-version:6.0
// SonoQuant: fine-tune, quantize and deploy a fetal-head U-Net in pure Swift.
// Builds with Swift 6.0 (Debian trixie's swiftlang, how an ARM board gets Swift) and 6.3.
import PackageDescription

// The float and int8 microkernels are compiled once per instruction set, as modules built from the same files
// (the extra directories hold symlinks to Sources/FloatMicrokernels and Sources/Int8Microkernels), and QuantEngine's `KernelPath` picks
// the best one for the CPU at run time. So plain `swift build -c release` gives one binary that runs on any
// CPU of its architecture and uses AVX2 or AVX-512 VNNI where they exist (docs/ARCHITECTURE.md, "Kernel
// paths"). The manifest is evaluated on the build machine: `#if arch` here is the architecture built for.
// Swift 6.0.3 cannot build the x86-64 copies (its -target-cpu hands clang an `-mcpu=` that x86 rejects, and
// its Builtin module has no vpdpbusd): there the package builds the portable path only (checked with 6.0.3
// and 6.3.1; the gate sits at the version checked).
#if arch(x86_64) && compiler(>=6.3)
let microkernelTargets: [Target] = [
    .target(name: "FloatMicrokernelsAVX2", path: "Sources/FloatMicrokernelsAVX2",
            swiftSettings: [.define("SONOQUANT_FMA"), .unsafeFlags(["-target-cpu", "haswell"])]),
    // The same float files for AVX-512: the dense tile on 16-lane registers (`SONOQUANT_AVX512`), the same bits as the AVX2 build.
    .target(name: "FloatMicrokernelsAVX512", path: "Sources/FloatMicrokernelsAVX512",
            swiftSettings: [.define("SONOQUANT_FMA"), .define("SONOQUANT_AVX512"), .unsafeFlags(["-target-cpu", "cascadelake"])]),
    .target(name: "Int8MicrokernelsAVX2", path: "Sources/Int8MicrokernelsAVX2",
            swiftSettings: [.unsafeFlags(["-target-cpu", "haswell"])]),
    // -parse-stdlib reaches `vpdpbusd` through Builtin (Sources/X86DotProductIntrinsics/VNNI.swift).
    .target(name: "X86DotProductIntrinsics",
            swiftSettings: [.unsafeFlags(["-parse-stdlib", "-target-cpu", "cascadelake"])]),
    .target(name: "Int8MicrokernelsAVX512VNNI", dependencies: ["X86DotProductIntrinsics"], path: "Sources/Int8MicrokernelsAVX512VNNI",
            swiftSettings: [.define("SONOQUANT_VNNI"), .unsafeFlags(["-target-cpu", "cascadelake"])]),
]
let microkernelModules: [Target.Dependency] = ["FloatMicrokernels", "Int8Microkernels",
                                               "FloatMicrokernelsAVX2", "FloatMicrokernelsAVX512", "Int8MicrokernelsAVX2",
                                               "Int8MicrokernelsAVX512VNNI"]
let floatMicrokernelModules: [Target.Dependency] = ["FloatMicrokernels", "FloatMicrokernelsAVX2", "FloatMicrokernelsAVX512"]
#else
let microkernelTargets: [Target] = []
let microkernelModules: [Target.Dependency] = ["FloatMicrokernels", "Int8Microkernels"]
let floatMicrokernelModules: [Target.Dependency] = ["FloatMicrokernels"]
#endif

// Built outside the Package(...) literal: Swift 6.0's type checker gives up on that expression when it
// holds more than one array concatenation.
let trainDependencies: [Target.Dependency] = ["QuantEngine", "HC18", "CMalloc"] + floatMicrokernelModules
let trainTestDependencies: [Target.Dependency] = ["Train", "QuantEngine", "HC18", "TestSupport"] + floatMicrokernelModules

let package = Package(
    name: "SonoQuant",
    products: [
        .executable(name: "sonoquant", targets: ["sonoquant"]),
        .library(name: "QuantEngine", targets: ["QuantEngine"]),
        // The deploy path for apps: frame file in, mask + ellipse + HC out (README, "Use SonoQuant in your
        // app"); the same code `sonoquant segment` runs. Does not build swift-argument-parser.
        .library(name: "SonoQuantDeploy", targets: ["Deploy", "DICOM", "HC18", "ImageCodecs", "QuantEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // libpng + libjpeg, the system image codecs the design card requires.
        .systemLibrary(name: "CImageCodecs", path: "Sources/CImageCodecs",
                       providers: [.apt(["libpng-dev", "libjpeg-dev"])]),
        // libjpeg decode wrapped in C only because libjpeg's error handling needs setjmp/longjmp.
        .target(name: "CJPEGShim", linkerSettings: [.linkedLibrary("jpeg")]),
        // Gray 8-bit PNG/JPEG decode and PNG encode on top of the C libraries.
        .target(name: "ImageCodecs", dependencies: ["CImageCodecs", "CJPEGShim", "QuantEngine"]),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        // The deployable engine: safetensors, the model graph, float32 and int8 kernels. No training code.
        .target(name: "QuantEngine", dependencies: ["CPUFeatures"] + microkernelModules),
        // The float and int8 microkernels for the baseline instruction set (SSE2 on x86-64, NEON on arm64).
        .target(name: "FloatMicrokernels"),
        .target(name: "Int8Microkernels"),
        // CPUID / auxiliary-vector feature detection for the run-time kernel choice (a few lines of C:
        // Swift has no inline assembly for CPUID and XGETBV).
        .target(name: "CPUFeatures"),
        // HC18 data: frames, annotation outlines -> masks, resizing, splits, HC measurement, metrics.
        .target(name: "HC18", dependencies: ["ImageCodecs", "QuantEngine"]),
        // Float32 trainer: forward/backward per layer, BCE-with-logits, Adam, fine-tuning presets.
        .target(name: "Train", dependencies: trainDependencies),
        // Post-training quantization: BN folding, per-channel int8 weights, activation observers.
        .target(name: "Calibrate", dependencies: ["QuantEngine", "HC18"]),
        // Accuracy / size / latency / memory reports per strategy and precision.
        .target(name: "Bench", dependencies: ["QuantEngine", "HC18", "Calibrate", "Train", "Deploy", "ImageCodecs"]),
        // `segment` on the board: frame -> mask, overlay, HC (float or int8 model).
        .target(name: "Deploy", dependencies: ["QuantEngine", "HC18", "ImageCodecs", "DICOM"]),
        // DICOM frames and cine loops as the scanner writes them, with the pixel size from the file.
        .target(name: "DICOM", dependencies: ["ImageCodecs", "QuantEngine"]),
        .executableTarget(name: "sonoquant", dependencies: [
            "QuantEngine", "HC18", "Train", "Calibrate", "Bench", "ImageCodecs", "Deploy",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fixture locations, temporary directories and assertions shared by every test target.
        .target(name: "TestSupport", dependencies: ["QuantEngine", "HC18"], path: "Tests/TestSupport"),
        .testTarget(name: "QuantEngineTests", dependencies: ["QuantEngine", "Int8Microkernels", "TestSupport"]),
        .testTarget(name: "HC18Tests", dependencies: ["HC18", "ImageCodecs", "QuantEngine", "TestSupport"]),
        .testTarget(name: "TrainTests", dependencies: trainTestDependencies),
        .testTarget(name: "DeployTests", dependencies: ["Deploy", "HC18", "ImageCodecs", "QuantEngine", "TestSupport"]),
        .testTarget(name: "BenchTests", dependencies: ["Bench", "Train", "HC18", "QuantEngine", "TestSupport"]),
        .testTarget(name: "DICOMTests", dependencies: ["DICOM", "Deploy", "ImageCodecs", "QuantEngine", "TestSupport"]),
        .testTarget(name: "CalibrateTests", dependencies: ["Calibrate", "QuantEngine", "HC18", "TestSupport"]),
    ] + microkernelTargets,
    swiftLanguageModes: [.v6]
)
