"""pytorch-fid's FID Inception-v3 in PyTorch, the one definition of it that
the golden values (tests/golden/make_eval_goldens.py) and the speed
benchmark (benchmarks/torch_inception.py) both use: torchvision's Inception3
with pytorch-fid's FIDInceptionA/C/E blocks (average pools that leave the
padding out of the count; Mixed_7c pools with a 3x3 stride-1 max) and 1008
classes. Needs torch and torchvision.
"""
import torch
import torch.nn.functional as F
import torchvision


class FIDInceptionA(torchvision.models.inception.InceptionA):
    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class FIDInceptionC(torchvision.models.inception.InceptionC):
    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(bd))))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class FIDInceptionE1(torchvision.models.inception.InceptionE):
    def pool(self, x):
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionE2(FIDInceptionE1):
    def pool(self, x):
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def fid_inception():
    """The network, in eval mode, with torchvision's uninitialised weights."""
    net = torchvision.models.inception.Inception3(num_classes=1008, aux_logits=False, transform_input=False,
                                                  init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE1(1280)
    net.Mixed_7c = FIDInceptionE2(2048)
    return net.eval()


def pool3(net, x, size=299):
    """pool3 features of images x in [0, 1] as pytorch-fid's InceptionV3
    wrapper computes them: bilinear resize to size x size
    (align_corners=False), then 2 x - 1 (normalize_input), the stem,
    Mixed_5b..7c, the global average."""
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    for name in ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"]:
        x = getattr(net, name)(x)
    x = F.max_pool2d(x, kernel_size=3, stride=2)
    x = net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, kernel_size=3, stride=2)
    for name in ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                 "Mixed_7a", "Mixed_7b", "Mixed_7c"]:
        x = getattr(net, name)(x)
    return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
