import Testing
@testable import TapioNode

/// One kubelet layout (or lookalike) and what must come out of it.
struct LayoutCase: Sendable, CustomTestStringConvertible {
    var name: String
    var path: String
    var expected: CgroupIdentity
    var testDescription: String { name }
}

private let uid = "0f6e3c4a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
private let uidSystemd = "0f6e3c4a_1b2c_4d5e_8f90_a1b2c3d4e5f6"
private let cid = "3b7d0e1f2a4c5b6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"
private let staticUID = "6b8a9c0d1e2f3a4b5c6d7e8f9a0b1c2d"

let layoutCases: [LayoutCase] = [
    // cgroupfs driver
    .init(name: "cgroupfs burstable containerd/docker bare id", path: "/kubepods/burstable/pod\(uid)/\(cid)",
          expected: .init(podUID: uid, qos: .burstable, containerID: cid, runtime: nil)),
    .init(name: "cgroupfs besteffort", path: "/kubepods/besteffort/pod\(uid)/\(cid)",
          expected: .init(podUID: uid, qos: .besteffort, containerID: cid)),
    .init(name: "cgroupfs guaranteed has no qos directory", path: "/kubepods/pod\(uid)/\(cid)",
          expected: .init(podUID: uid, qos: .guaranteed, containerID: cid)),
    .init(name: "cgroupfs CRI-O leaf", path: "/kubepods/burstable/pod\(uid)/crio-\(cid)",
          expected: .init(podUID: uid, qos: .burstable, containerID: cid, runtime: .crio)),
    .init(name: "cgroupfs pod-level cgroup has no container", path: "/kubepods/burstable/pod\(uid)",
          expected: .init(podUID: uid, qos: .burstable)),
    .init(name: "cgroupfs static pod with a 32-hex uid", path: "/kubepods/burstable/pod\(staticUID)/\(cid)",
          expected: .init(podUID: staticUID, qos: .burstable, containerID: cid)),
    // systemd driver
    .init(name: "systemd containerd scope",
          path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice/cri-containerd-\(cid).scope",
          expected: .init(podUID: uid, qos: .burstable, containerID: cid, runtime: .containerd)),
    .init(name: "systemd besteffort CRI-O scope",
          path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(uidSystemd).slice/crio-\(cid).scope",
          expected: .init(podUID: uid, qos: .besteffort, containerID: cid, runtime: .crio)),
    .init(name: "systemd guaranteed docker scope",
          path: "/kubepods.slice/kubepods-pod\(uidSystemd).slice/docker-\(cid).scope",
          expected: .init(podUID: uid, qos: .guaranteed, containerID: cid, runtime: .docker)),
    .init(name: "systemd pod-level slice",
          path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice",
          expected: .init(podUID: uid, qos: .burstable)),
    .init(name: "systemd CRI-O conmon is not the container",
          path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice/crio-conmon-\(cid).scope",
          expected: .init(podUID: uid, qos: .burstable)),
    .init(name: "cgroupfs CRI-O conmon is not the container", path: "/kubepods/burstable/pod\(uid)/crio-conmon-\(cid)",
          expected: .init(podUID: uid, qos: .burstable)),
    // kind and nested
    .init(name: "kind systemd under kubelet.slice",
          path: "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod\(uidSystemd).slice/cri-containerd-\(cid).scope",
          expected: .init(podUID: uid, qos: .besteffort, containerID: cid, runtime: .containerd)),
    .init(name: "containerd systemd cgroupsPath form with colons",
          path: "/kubepods-besteffort-pod\(uidSystemd).slice:cri-containerd:\(cid)",
          expected: .init(podUID: uid, qos: .besteffort, containerID: cid, runtime: .containerd)),
    .init(name: "nested under a docker container (kind node, cgroupfs)",
          path: "/docker/\(String(cid.reversed()))/kubepods/burstable/pod\(uid)/\(cid)",
          expected: .init(podUID: uid, qos: .burstable, containerID: cid)),
    .init(name: "nested kind node pod-level cgroup does not report the node's container",
          path: "/docker/\(String(cid.reversed()))/kubepods/besteffort/pod\(uid)",
          expected: .init(podUID: uid, qos: .besteffort)),
    // local containers and plain cgroups
    .init(name: "plain docker container (cgroupfs)", path: "/docker/\(cid)",
          expected: .init(containerID: cid, runtime: .docker)),
    .init(name: "plain docker container (systemd)", path: "/system.slice/docker-\(cid).scope",
          expected: .init(containerID: cid, runtime: .docker)),
    .init(name: "systemd service is a subject with no container", path: "/system.slice/foo.service", expected: .init()),
    .init(name: "root cgroup", path: "/", expected: .init()),
    .init(name: "kubepods QoS level without a pod", path: "/kubepods/burstable", expected: .init(qos: .burstable)),
    // lookalikes that must not match
    .init(name: "63-hex leaf is not a container id", path: "/kubepods/burstable/pod\(uid)/\(cid.dropLast())",
          expected: .init(podUID: uid, qos: .burstable)),
    .init(name: "65-hex leaf is not a container id", path: "/kubepods/burstable/pod\(uid)/\(cid)a",
          expected: .init(podUID: uid, qos: .burstable)),
    .init(name: "uppercase hex leaf is not a container id", path: "/kubepods/burstable/pod\(uid)/\(cid.uppercased())",
          expected: .init(podUID: uid, qos: .burstable)),
    .init(name: "short hex scope is not a container", path: "/kubepods/burstable/pod\(uid)/cri-containerd-abc123.scope",
          expected: .init(podUID: uid, qos: .burstable)),
    .init(name: "pod without a uid is not a pod", path: "/kubepods/burstable/pod/\(cid)", expected: .init(qos: .burstable)),
    .init(name: "pod with a malformed uid is not a pod", path: "/kubepods/burstable/podnot-a-uid/\(cid)",
          expected: .init(qos: .burstable)),
    .init(name: "pod directory outside kubepods is not a pod", path: "/user.slice/pod\(uid)/\(cid)", expected: .init()),
    .init(name: "bare hex outside kubepods and docker is not a container", path: "/system.slice/\(cid)", expected: .init()),
    .init(name: "systemd slice with dashes left in the uid is not a pod",
          path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uid).slice",
          expected: .init(qos: .burstable)),
]

@Suite(.timeLimit(.minutes(2))) struct CgroupPathParserTests {
    @Test("every kubelet layout and lookalike parses to its expected identity", arguments: layoutCases)
    func layout(_ c: LayoutCase) {
        #expect(CgroupPathParser.identity(of: c.path) == c.expected)
    }

    @Test func theKubeletsAggregateCgroupsAreToldFromContainersAndEverythingElse() {
        let aggregates = ["/kubepods", "/kubepods/burstable", "/kubepods/besteffort/pod\(uid)", "/kubepods/pod\(uid)",
                          "/kubepods.slice", "/kubepods.slice/kubepods-burstable.slice",
                          "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidSystemd).slice",
                          "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod\(uidSystemd).slice",
                          "/docker/\(cid)/kubepods/burstable/pod\(uid)"]
        for path in aggregates { #expect(CgroupPathParser.isKubeletAggregate(path), "\(path)") }
        let others = ["/", "", "/kubepods/burstable/pod\(uid)/\(cid)", "/system.slice/kubelet.service", "/user.slice/pod\(uid)",
                      "/kubepods.slice/kubepods-pod\(uidSystemd).slice/cri-containerd-\(cid).scope", "/docker/\(cid)",
                      "/kubepods/burstable/pod\(uid)/crio-conmon-\(cid)", "/pod\(uid)", "/burstable"]
        for path in others { #expect(!CgroupPathParser.isKubeletAggregate(path), "\(path)") }
    }

    @Test func containerIDsAreExactlySixtyFourLowercaseHexDigits() {
        #expect(CgroupPathParser.isContainerID(cid))
        #expect(!CgroupPathParser.isContainerID(cid.dropLast()))
        #expect(!CgroupPathParser.isContainerID(cid + "0"))
        #expect(!CgroupPathParser.isContainerID(cid.uppercased()))
        #expect(!CgroupPathParser.isContainerID(String(cid.dropLast()) + "g"))
    }
}

@Suite(.timeLimit(.minutes(2))) struct ProcCgroupFileTests {
    @Test("the byte parser agrees with the string parser", arguments: [
        "12:pids:/x\n4:memory:/kubepods/pod1/abc\n0::/\n", "5:cpu,memory:/a/b\n", "5:memoryx:/no\n0::/v2/path\n",
        "0::/a:b:c\n", "3:cpu:/x\n", "", "4:memory:/no-trailing-newline", "garbage\n1:name=systemd:/s\n", "0::\n",
    ])
    func byteParserAgrees(_ text: String) {
        var bytes = Array(text.utf8)
        let viaBytes = bytes.withUnsafeMutableBufferPointer { ProcCgroupFile.memoryCgroup(bytes: UnsafeBufferPointer($0)) }
        #expect(viaBytes == ProcCgroupFile.memoryCgroup(in: text))
    }

    @Test func theV1MemoryLineWinsOnAHybridHost() {
        let text = """
        12:pids:/kubepods/burstable/podX
        4:memory:/kubepods/burstable/pod\(uid)/\(cid)
        3:cpu,cpuacct:/kubepods
        0::/
        """
        #expect(ProcCgroupFile.memoryCgroup(in: text) == ProcCgroupEntry(version: .v1, path: "/kubepods/burstable/pod\(uid)/\(cid)"))
    }

    @Test func aCombinedControllerListContainingMemoryCounts() {
        #expect(ProcCgroupFile.memoryCgroup(in: "5:cpu,memory:/a/b\n")?.path == "/a/b")
    }

    @Test func theUnifiedLineIsUsedOnAPureV2Host() {
        let path = "/kubepods.slice/kubepods-pod\(uidSystemd).slice/cri-containerd-\(cid).scope"
        #expect(ProcCgroupFile.memoryCgroup(in: "0::\(path)\n") == ProcCgroupEntry(version: .v2, path: path))
    }

    @Test func aPathContainingColonsIsKeptWhole() {
        #expect(ProcCgroupFile.memoryCgroup(in: "0::/a:b:c\n")?.path == "/a:b:c")
    }

    @Test func noMemoryAndNoUnifiedLineGivesNil() {
        #expect(ProcCgroupFile.memoryCgroup(in: "3:cpu:/x\n2:pids:/y\n") == nil)
        #expect(ProcCgroupFile.memoryCgroup(in: "") == nil)
    }
}

@Suite(.timeLimit(.minutes(2))) struct CgroupMountTests {
    let hybrid = """
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    """

    @Test func aV1MemoryMountWinsOverTheUnifiedOne() {
        let m = CgroupMount.memoryMount(mountinfo: hybrid, hasMemoryController: { _ in true })
        #expect(m == CgroupMount(version: .v1, mountPoint: "/sys/fs/cgroup/memory", root: "/"))
    }

    @Test func theUnifiedMountIsUsedWhenItHasTheMemoryController() {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
        #expect(CgroupMount.memoryMount(mountinfo: text, hasMemoryController: { $0 == "/sys/fs/cgroup" })?.version == .v2)
        #expect(CgroupMount.memoryMount(mountinfo: text, hasMemoryController: { _ in false }) == nil)
    }

    @Test func aContainerisedMountRootIsStrippedAndRestored() {
        let text = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid shared:9 - cgroup cgroup rw,memory\n"
        let m = CgroupMount.memoryMount(mountinfo: text)!
        #expect(m.root == "/docker/abc")
        #expect(m.directory(forCgroupPath: "/docker/abc/kubepods/x") == "/sys/fs/cgroup/memory/kubepods/x")
        #expect(m.cgroupPath(forDirectory: "/sys/fs/cgroup/memory/kubepods/x") == "/docker/abc/kubepods/x")
    }

    @Test func octalEscapesInMountPointsAreDecoded() {
        let text = "35 31 0:32 / /mnt/my\\040cgroups rw - cgroup cgroup rw,memory\n"
        #expect(CgroupMount.memoryMount(mountinfo: text)?.mountPoint == "/mnt/my cgroups")
    }

    @Test func thisMachinesMemoryHierarchyIsFound() throws {
        let m = try #require(CgroupMount.discover())
        #expect(FileIO.inode(of: m.mountPoint) != nil)
    }
}
