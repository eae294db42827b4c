import KubeClient

// KubeClient and TapioModel both define ObjectMeta (the client's is the wire type; the model's is what CRD
// values carry). The module KubeClient also has a class KubeClient, which hides `KubeClient.ObjectMeta`: these
// aliases, declared where only KubeClient is imported, name the client's types unambiguously.
public typealias KubeObjectMeta = ObjectMeta
public typealias KubeOwnerReference = OwnerReference
