"""What viewers type in a live-selling chat, in Chinese and English, by mood.

Why it matters: the sentiment model, the hot-word report and the text normaliser are only tested
as well as the chat they see.  Real rooms are full of slang (yyds, 666, 绝绝子), emoji, repeated
characters, questions about the product, complaints about stock and shipping, and sarcasm that
says "great" and means the opposite.  Templates carry ``{product}``, ``{color}``, ``{size}``,
``{n}``, ``{emoji}`` and ``{city}`` slots; :func:`render` fills them from a seeded ``random.Random``.

The mood of each template is kept (``MOODS``) so that other modules (sentiment evaluation, the
demo) can use the simulator's chat as rough in-domain examples.
"""

from __future__ import annotations

import random
from typing import Final, Literal

Mood = Literal["hype", "question", "complaint", "sarcasm", "chatter"]

PRODUCTS_ZH: Final = ("真皮包", "羽绒服", "口红", "面膜", "连衣裙", "运动鞋", "保温杯", "耳机", "卫衣", "精华液")
PRODUCTS_EN: Final = ("bag", "jacket", "lipstick", "serum", "dress", "sneakers", "tumbler", "earbuds", "hoodie")
COLORS_ZH: Final = ("黑色", "白色", "红色", "奶茶色", "藏青", "焦糖色")
COLORS_EN: Final = ("black", "white", "red", "beige", "navy", "caramel")
SIZES: Final = ("S", "M", "L", "XL", "XXL", "36", "38", "40")
CITIES_ZH: Final = ("上海", "成都", "广州", "杭州", "哈尔滨", "新疆", "西藏", "香港")
CITIES_EN: Final = ("Singapore", "LA", "Toronto", "Sydney", "London", "KL")
EMOJI: Final = ("🔥", "👍", "❤️", "😂", "😍", "🙏", "💯", "🛒", "😭", "😡", "🤔", "👀", "✨", "🎉", "🙄", "💸")

#: Product titles for flash-sale SKUs (SaleConfig.title).
TITLES: Final = (
    "头层牛皮托特包 限时秒杀",
    "90绒白鸭绒羽绒服",
    "丝绒哑光口红 三支装",
    "玻尿酸补水面膜 20片",
    "法式碎花连衣裙",
    "Cloud Runner sneakers",
    "Vacuum tumbler 500ml",
    "Noise-cancelling earbuds",
    "Oversized cotton hoodie",
    "维C精华液 30ml",
)

HYPE: Final = (
    "yyds", "yyds!!!", "主播yyds", "{product}yyds", "666", "6666666", "666 主播太会了", "绝绝子",
    "绝绝子{emoji}", "这个{product}绝绝子", "🔥🔥🔥", "{emoji}{emoji}{emoji}", "哈哈哈", "哈哈哈哈哈哈",
    "来了来了", "来了", "冲冲冲", "冲！", "已拍", "已拍{n}件", "拍了拍了", "抢到了！！", "抢到了{emoji}",
    "终于抢到了哈哈哈", "家人们冲", "主播好美", "主播今天好好看", "这个价格太香了", "太香了", "爱了爱了",
    "种草了", "回购第{n}次了", "质量真的好", "上次买的{product}超好用", "{color}好好看", "必须支持",
    "买买买", "给主播点赞{emoji}", "好物推荐👍", "这波不亏", "捡漏成功", "闭眼入", "这个颜色绝了",
    "姐妹们冲{product}", "直接下单了", "手速够快！", "宝藏主播", "第一次抢到秒杀 激动",
    "yyds 绝绝子 🔥", "666 yyds 冲", "lol love this", "take my money 💸", "W host", "this is fire 🔥",
    "fire 🔥🔥", "got it!!", "bought {n}!", "just ordered the {color} one", "omg so cute 😍",
    "love the {product}", "best live ever", "yesss", "finally got one 🎉", "restock pls I need this",
    "my 3rd {product} from this shop, quality is great", "W", "huge W", "that's a steal",
    "slay", "obsessed with this {product}", "amazing deal", "ordered for my mom too ❤️",
    "冲鸭", "上车了", "已下单 坐等发货", "老粉来支持", "{product}颜值太高了", "这个{product}我买了{n}个",
    "主播讲得好清楚", "听主播的准没错", "性价比绝了", "又来薅羊毛了哈哈", "给妈妈也拍了一件", "颜色好正",
    "上身效果好好", "这波福利可以", "{emoji}已拍{emoji}", "谢谢主播 抢到了", "绝了绝了",
    "the {color} is gorgeous", "adding to cart rn 🛒", "host is so funny 😂", "this deal is crazy",
    "quality looks legit", "best price I've seen", "10/10 recommend", "just copped 2", "🔥 deal 🔥",
)

QUESTIONS: Final = (
    "link pls", "link??", "link please 🙏", "where's the link", "is it real leather?",
    "is it real leather or PU?", "what size is the model wearing?", "does it come in {color}?",
    "ship to {city}?", "do you ship to {city}", "how long is shipping?", "is there a {size}?",
    "what's the material?", "can I return it if it doesn't fit?", "price in USD?", "any discount code?",
    "when is the next restock?", "how many left?", "is the {product} waterproof?", "size {size} fits 60kg?",
    "上链接", "上链接！！", "链接呢", "求链接", "几号链接", "是真皮吗", "是真皮吗？", "有{color}吗",
    "有{size}码吗", "{size}码还有吗", "{city}包邮吗", "发{city}吗", "什么时候发货", "几天能到",
    "能退吗", "七天无理由吗", "还有库存吗", "还剩多少件", "多少钱", "怎么领券", "有赠品吗",
    "{product}是什么材质", "主播多高多重", "{product}会掉色吗", "敏感肌能用吗", "孕妇能用吗",
    "能便宜点吗", "可以分期吗", "什么时候返场", "蹲一个返场", "求返场", "下一个是什么",
    "这个和上次的有什么区别", "{n}号链接是什么", "怎么没看到购物车", "为什么拍不了",
    "{product}能机洗吗", "{color}显黑吗", "保质期多久", "有没有小样", "几点开抢", "还会补货吗",
    "拍两件能便宜吗", "学生党能用吗", "男生能穿吗", "{product}有异味吗",
    "is the {product} unisex?", "true to size?", "how many can I buy?", "when does the sale start?",
    "will there be a restock?", "gift wrap available?", "is this the same as the one on the site?",
    "does the {product} have a warranty?",
)

COMPLAINTS: Final = (
    "抢不到", "又没抢到😭", "秒没", "手慢无", "怎么又没了", "库存呢？？", "卡住了 拍不了",
    "付款失败", "一直转圈", "页面崩了", "发货太慢了", "上次的还没发货", "质量一般", "跟图片不一样",
    "掉色严重", "太贵了", "比旗舰店还贵", "客服不回消息", "退货好麻烦", "踩雷了", "翻车了",
    "假货吧", "骗子", "不买了", "拉黑了", "取关了", "差评", "什么破质量", "尺码偏小",
    "收到是坏的😡", "等了半小时就这", "主播能不能别拖了", "太吵了", "声音太小听不见",
    "can't checkout", "sold out already??", "sold out in 1 second?? 😡", "app keeps crashing",
    "payment failed twice", "still waiting for my last order", "quality is bad", "not worth it",
    "too expensive", "this is a scam", "mine arrived broken", "customer service never replies",
    "stop stalling and open the sale", "worst live ever", "refund please", "the {color} one faded after 1 wash",
    "L", "meh", "nope", "waste of time",
    "一秒就没了 有没有真库存", "又卡了😭", "抢了五次都失败", "客服态度差", "包装破了", "退款还没到账",
    "说好的赠品呢", "跟上次买的不一样", "物流三天没动", "couldn't even add to cart",
    "it says sold out but the timer is still running",
    "the app logged me out mid-checkout 😡", "refund still not received", "wrong size delivered",
)

SARCASM: Final = (
    "哦 又是\"最后一波\"了呢", "这价格真\"便宜\"啊", "\"限量\"一万件是吧", "主播说真皮那肯定是真皮咯🙄",
    "好家伙 0.1秒抢光 真实", "又是\"全网最低\"", "我信了 真的", "笑死 秒没也太快了吧",
    "你们手速是机器人吧", "这\"原价\"谁定的", "真是谢谢你哦", "哈哈哈 我真的会谢", "绝绝子 绝了个寂寞",
    "yyds (永远的等待)", "666 又没抢到", "懂了 抢不到是我的问题", "质量好到三天就坏了呢",
    "wow sold out in 0.1s, totally not fake 🙄", "yeah \"real leather\" sure", "great, another bot army",
    "love waiting 2 weeks for shipping", "\"limited stock\" lol", "amazing, the link doesn't work again",
    "cool cool cool, sold out before it opened", "can't wait for this to fall apart 🙃", "sure, 'best price ever'",
    "oh nice, the 5th 'last chance' today", "10/10 would fail checkout again",
    "厉害了 库存比我的耐心还少", "抢不到的都是缘分是吧", "主播说包邮 运费十块", "谢谢 又一次陪跑",
    "thanks for the 0.2 seconds of hope", "love how 'in stock' means 'not for you'", "sure, 'genuine' 🙃",
)

CHATTER: Final = (
    "来了", "来啦", "晚上好", "主播好", "大家好", "打卡", "第一次来", "从{city}来的", "{city}的举手",
    "刚下班", "蹲", "蹲蹲", "围观", "路过", "看看", "嗯嗯", "好的", "收到", "1", "11111", "哈哈",
    "主播喝口水吧", "背景音乐叫什么", "今天播到几点", "关注了", "分享给朋友了", "{emoji}", "👀",
    "hi from {city}", "hello", "hi all", "first time here", "just joined", "what did I miss?", "lol",
    "watching from work 👀", "good evening", "hey host", "music name?", "how long is the stream today?",
    "following!", "shared with my sister", "ok", "👋", "brb",
    "刚来 现在讲的是哪个", "主播辛苦了", "晚安", "下次什么时候播", "哈哈哈哈", "挂着", "点赞了",
    "replay available?", "what time is it there?", "hi again", "back!", "same time tomorrow?",
)

#: Every template with its mood, in a fixed order (the seeded generator indexes into it).
MOODS: Final[tuple[tuple[Mood, str], ...]] = (
    tuple(("hype", t) for t in HYPE)
    + tuple(("question", t) for t in QUESTIONS)
    + tuple(("complaint", t) for t in COMPLAINTS)
    + tuple(("sarcasm", t) for t in SARCASM)
    + tuple(("chatter", t) for t in CHATTER)
)

#: How often each mood is picked; complaints and sarcasm rise after a sell-out (see ``pick_mood``).
BASE_MOOD_WEIGHTS: Final[dict[Mood, float]] = {
    "hype": 0.34, "question": 0.24, "complaint": 0.12, "sarcasm": 0.05, "chatter": 0.25,
}
_BY_MOOD: Final[dict[Mood, tuple[str, ...]]] = {
    "hype": HYPE, "question": QUESTIONS, "complaint": COMPLAINTS, "sarcasm": SARCASM, "chatter": CHATTER,
}


def _is_chinese(template: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in template)


def pick_mood(rng: random.Random, frustration: float = 0.0) -> Mood:
    """A mood; ``frustration`` in [0, 1] shifts weight from hype to complaints and sarcasm
    (after a hot SKU sells out, the chat turns)."""
    w = dict(BASE_MOOD_WEIGHTS)
    shift = w["hype"] * 0.7 * frustration
    w["hype"] -= shift
    w["complaint"] += shift * 0.7
    w["sarcasm"] += shift * 0.3
    moods = list(w)
    return rng.choices(moods, weights=[w[m] for m in moods])[0]


def render(rng: random.Random, mood: Mood) -> str:
    """One comment of ``mood``: a template with its slots filled, sometimes with extra emoji or
    punctuation the way people type in a hurry."""
    template = rng.choice(_BY_MOOD[mood])
    zh = _is_chinese(template)
    text = template.format(
        product=rng.choice(PRODUCTS_ZH if zh else PRODUCTS_EN),
        color=rng.choice(COLORS_ZH if zh else COLORS_EN),
        size=rng.choice(SIZES),
        city=rng.choice(CITIES_ZH if zh else CITIES_EN),
        n=rng.randint(1, 5),
        emoji=rng.choice(EMOJI),
    )
    roll = rng.random()
    if roll < 0.12:
        text += rng.choice(EMOJI) * rng.randint(1, 3)
    elif roll < 0.17:
        text += "!" * rng.randint(2, 4) if not zh else "！" * rng.randint(1, 3)
    elif roll < 0.20:
        text = f"{text} {text}"  # typed twice in excitement
    return text
