"""The Vulkan devices the loader offers, asked through the loader itself (ctypes; vulkaninfo is not always
installed): vkCreateInstance, vkEnumeratePhysicalDevices, each device's properties and, where the driver has
VK_EXT_pci_bus_info, its PCI address. A device of type CPU is a software rasteriser (lavapipe, llvmpipe,
SwiftShader), not a GPU. Run in a child process by the doctor: an installable client driver can fault.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from .._platform import IS_MACOS, IS_WINDOWS
from .sysfs import pci_address

LOADER = "vulkan-1.dll" if IS_WINDOWS else "libvulkan.1.dylib" if IS_MACOS else "libvulkan.so.1"
TYPES = {0: "other", 1: "integrated", 2: "discrete", 3: "virtual", 4: "cpu"}  # VkPhysicalDeviceType
_API_1_1 = 1 << 22 | 1 << 12  # VK_MAKE_API_VERSION(0, 1, 1, 0): vkGetPhysicalDeviceProperties2 is core
_APPLICATION_INFO, _INSTANCE_CREATE_INFO = 0, 1  # VkStructureType
_PROPERTIES_2, _PCI_BUS_INFO = 1000059001, 1000212000
_PCI_EXTENSION = b"VK_EXT_pci_bus_info"


@dataclass(frozen=True)
class VulkanDevice:
    name: str
    type: str  # discrete, integrated, virtual, cpu, other
    vendor_id: int
    device_id: int
    api_version: str  # "1.3.255"
    bus_id: str  # "0000:01:00.0", or "" without VK_EXT_pci_bus_info

    @property
    def gpu(self) -> bool:
        return self.type in {"discrete", "integrated", "virtual"}


class _ApplicationInfo(ctypes.Structure):
    _fields_ = (
        ("sType", ctypes.c_int),
        ("pNext", ctypes.c_void_p),
        ("pApplicationName", ctypes.c_char_p),
        ("applicationVersion", ctypes.c_uint32),
        ("pEngineName", ctypes.c_char_p),
        ("engineVersion", ctypes.c_uint32),
        ("apiVersion", ctypes.c_uint32),
    )


class _InstanceCreateInfo(ctypes.Structure):
    _fields_ = (
        ("sType", ctypes.c_int),
        ("pNext", ctypes.c_void_p),
        ("flags", ctypes.c_uint32),
        ("pApplicationInfo", ctypes.POINTER(_ApplicationInfo)),
        ("enabledLayerCount", ctypes.c_uint32),
        ("ppEnabledLayerNames", ctypes.c_void_p),
        ("enabledExtensionCount", ctypes.c_uint32),
        ("ppEnabledExtensionNames", ctypes.c_void_p),
    )


class _Properties(ctypes.Structure):
    """VkPhysicalDeviceProperties: the fields read, then room for the limits and the rest (824 bytes in
    Vulkan 1.3; the driver writes all of them)."""

    _fields_ = (
        ("apiVersion", ctypes.c_uint32),
        ("driverVersion", ctypes.c_uint32),
        ("vendorID", ctypes.c_uint32),
        ("deviceID", ctypes.c_uint32),
        ("deviceType", ctypes.c_int),
        ("deviceName", ctypes.c_char * 256),
        ("rest", ctypes.c_uint64 * 256),
    )


class _PciBusInfo(ctypes.Structure):
    _fields_ = (
        ("sType", ctypes.c_int),
        ("pNext", ctypes.c_void_p),
        ("pciDomain", ctypes.c_uint32),
        ("pciBus", ctypes.c_uint32),
        ("pciDevice", ctypes.c_uint32),
        ("pciFunction", ctypes.c_uint32),
    )


class _Properties2(ctypes.Structure):
    _fields_ = (("sType", ctypes.c_int), ("pNext", ctypes.c_void_p), ("properties", _Properties))


class _ExtensionProperties(ctypes.Structure):
    _fields_ = (("extensionName", ctypes.c_char * 256), ("specVersion", ctypes.c_uint32))


def probe_vulkan() -> list[VulkanDevice] | str:
    """Every physical device, or why there are none to ask (the loader's words, or the VkResult)."""
    try:
        loader = ctypes.CDLL(LOADER)
    except OSError as error:
        return f"no Vulkan loader ({error})"
    application = _ApplicationInfo(_APPLICATION_INFO, None, b"llama-cpp-runtime doctor", 1, None, 0, _API_1_1)
    create = _InstanceCreateInfo(_INSTANCE_CREATE_INFO, None, 0, ctypes.pointer(application), 0, None, 0, None)
    instance = ctypes.c_void_p()
    result = loader.vkCreateInstance(ctypes.byref(create), None, ctypes.byref(instance))
    if result != 0:
        return f"vkCreateInstance failed (VkResult {result}): no Vulkan driver is installed, or none works"
    try:
        return [_device(loader, handle) for handle in _physical_devices(loader, instance)]
    finally:
        loader.vkDestroyInstance(instance, None)


def _physical_devices(loader: ctypes.CDLL, instance: ctypes.c_void_p) -> list[ctypes.c_void_p]:
    count = ctypes.c_uint32(0)
    loader.vkEnumeratePhysicalDevices(instance, ctypes.byref(count), None)
    handles = (ctypes.c_void_p * count.value)()
    if count.value and loader.vkEnumeratePhysicalDevices(instance, ctypes.byref(count), handles) not in {0, 5}:
        return []  # 5 is VK_INCOMPLETE: a device went away between the calls; the ones written are good
    return [ctypes.c_void_p(handle) for handle in handles[: count.value]]


def _device(loader: ctypes.CDLL, handle: ctypes.c_void_p) -> VulkanDevice:
    properties = _Properties()
    loader.vkGetPhysicalDeviceProperties(handle, ctypes.byref(properties))
    version = properties.apiVersion
    return VulkanDevice(
        name=properties.deviceName.decode(errors="replace"),
        type=TYPES.get(properties.deviceType, "other"),
        vendor_id=properties.vendorID,
        device_id=properties.deviceID,
        api_version=f"{version >> 22 & 0x7F}.{version >> 12 & 0x3FF}.{version & 0xFFF}",
        bus_id=_bus_id(loader, handle) if version >= _API_1_1 else "",
    )


def _bus_id(loader: ctypes.CDLL, handle: ctypes.c_void_p) -> str:
    """The device's PCI address, when its driver has VK_EXT_pci_bus_info (asked first: chaining a structure
    a driver does not know is not allowed)."""
    if not _has_extension(loader, handle, _PCI_EXTENSION):
        return ""
    pci = _PciBusInfo(_PCI_BUS_INFO, None, 0, 0, 0, 0)
    properties = _Properties2(_PROPERTIES_2, ctypes.cast(ctypes.pointer(pci), ctypes.c_void_p))
    loader.vkGetPhysicalDeviceProperties2(handle, ctypes.byref(properties))
    return pci_address(pci.pciDomain, pci.pciBus, pci.pciDevice, pci.pciFunction)


def _has_extension(loader: ctypes.CDLL, handle: ctypes.c_void_p, name: bytes) -> bool:
    count = ctypes.c_uint32(0)
    if loader.vkEnumerateDeviceExtensionProperties(handle, None, ctypes.byref(count), None) != 0:
        return False
    extensions = (_ExtensionProperties * count.value)()
    if loader.vkEnumerateDeviceExtensionProperties(handle, None, ctypes.byref(count), extensions) not in {0, 5}:
        return False
    return any(extension.extensionName == name for extension in extensions[: count.value])
