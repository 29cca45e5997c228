/**
 * Characters that tell simplified from traditional Chinese.
 *
 * PAIRS holds common simplified→traditional pairs where the simplified character is not
 * in normal traditional use and the traditional one is not in normal simplified use.
 * Characters with a standard meaning on both sides (干/乾/幹, 后/後, 面/麵, 里/裡, 台/臺,
 * 云/雲, 发/髮's 髮 counterpart, 余, 谷, 松, 斗, 丑, 准, 范, 系, 复, 历's 曆, 着/著, ...) are
 * left out on the side where they are ambiguous, so a match is evidence, not a guess.
 *
 * Limits: about 790 pairs of the most frequent characters, not a full OpenCC table;
 * regional variants (説/說, 爲/為, 衞/衛) count only as listed; surnames such as 党 can
 * occur in traditional text and would read as simplified. A text with no listed
 * character is `neutral` (the same in both scripts as far as this table knows).
 */
const PAIRS = `
爱愛 罢罷 备備 贝貝 笔筆 边邊 变變 宾賓 补補 财財 参參 蚕蠶 仓倉 产產 长長 尝嘗 车車 陈陳 称稱
惩懲 迟遲 齿齒 虫蟲 处處 触觸 传傳 疮瘡 闯闖 创創 词詞 从從 聪聰 错錯 达達 带帶 单單 当當 党黨
导導 灯燈 邓鄧 敌敵 递遞 点點 电電 东東 冻凍 动動 独獨 读讀 断斷 队隊 对對 吨噸 夺奪 恶惡 儿兒
尔爾 发發 罚罰 饭飯 访訪 飞飛 废廢 费費 纷紛 坟墳 奋奮 粪糞 风風 冯馮 凤鳳 妇婦 负負 该該 盖蓋
赶趕 刚剛 钢鋼 纲綱 岗崗 搁擱 鸽鴿 个個 给給 巩鞏 贡貢 沟溝 构構 购購 顾顧 关關 观觀 馆館 惯慣
贯貫 广廣 归歸 龟龜 规規 轨軌 贵貴 国國 过過 还還 汉漢 号號 轰轟 护護 沪滬 户戶 画畫 话話 怀懷
坏壞 欢歡 环環 换換 唤喚 挥揮 辉輝 汇匯 会會 绘繪 荤葷 浑渾 货貨 获獲 击擊 鸡雞 积積 极極 际際
继繼 纪紀 价價 驾駕 坚堅 歼殲 监監 减減 荐薦 剑劍 鉴鑒 见見 将將 奖獎 讲講 酱醬 胶膠 阶階 节節
洁潔 结結 届屆 紧緊 仅僅 进進 尽盡 惊驚 经經 颈頸 静靜 镜鏡 纠糾 旧舊 剧劇 举舉 据據 惧懼 觉覺
军軍 开開 凯凱 颗顆 课課 垦墾 恳懇 库庫 块塊 宽寬 矿礦 亏虧 扩擴 阔闊 蜡蠟 腊臘 来來 蓝藍 兰蘭
拦攔 栏欄 烂爛 劳勞 乐樂 类類 泪淚 离離 礼禮 丽麗 历歷 厉厲 励勵 连連 联聯 怜憐 脸臉 练練 炼煉
恋戀 粮糧 两兩 辆輛 谅諒 疗療 辽遼 猎獵 邻鄰 临臨 灵靈 岭嶺 领領 刘劉 龙龍 楼樓 娄婁 录錄 陆陸
驴驢 虑慮 乱亂 伦倫 论論 轮輪 罗羅 萝蘿 锣鑼 骡騾 妈媽 马馬 码碼 骂罵 吗嗎 买買 卖賣 迈邁 麦麥
满滿 猫貓 贸貿 没沒 们們 门門 梦夢 弥彌 谜謎 绵綿 庙廟 灭滅 鸣鳴 亩畝 恼惱 脑腦 闹鬧 拟擬 鸟鳥
宁寧 农農 浓濃 脓膿 盘盤 赔賠 喷噴 鹏鵬 骗騙 飘飄 贫貧 凭憑 评評 泼潑 扑撲 铺鋪 谱譜 齐齊 骑騎
岂豈 启啟 气氣 弃棄 迁遷 签簽 钱錢 浅淺 枪槍 墙牆 强強 抢搶 桥橋 乔喬 侨僑 窍竅 亲親 轻輕 氢氫
倾傾 庆慶 穷窮 区區 驱驅 趋趨 权權 劝勸 确確 让讓 扰擾 热熱 认認 荣榮 软軟 锐銳 润潤 洒灑 伞傘
丧喪 扫掃 杀殺 纱紗 晒曬 闪閃 陕陝 伤傷 赏賞 烧燒 绍紹 设設 摄攝 绅紳 审審 渗滲 声聲 绳繩 胜勝
圣聖 师師 湿濕 诗詩 时時 实實 识識 驶駛 势勢 释釋 寿壽 兽獸 书書 输輸 术術 树樹 帅帥 双雙 谁誰
税稅 顺順 说說 硕碩 丝絲 饲飼 耸聳 诉訴 肃肅 虽雖 随隨 岁歲 孙孫 损損 笋筍 缩縮 琐瑣 锁鎖 态態
摊攤 滩灘 瘫癱 坛壇 谈談 叹嘆 汤湯 烫燙 涛濤 讨討 腾騰 题題 体體 条條 铁鐵 厅廳 听聽 头頭 图圖
团團 袜襪 弯彎 湾灣 万萬 网網 为為 韦韋 违違 围圍 伟偉 卫衛 稳穩 问問 窝窩 卧臥 乌烏 无無 务務
雾霧 误誤 牺犧 习習 戏戲 细細 虾蝦 吓嚇 峡峽 狭狹 厦廈 纤纖 鲜鮮 贤賢 险險 县縣 现現 线線 宪憲
乡鄉 详詳 响響 项項 萧蕭 销銷 晓曉 协協 胁脅 写寫 泻瀉 谢謝 兴興 汹洶 许許 叙敘 续續 轩軒 选選
悬懸 学學 寻尋 询詢 训訓 讯訊 逊遜 压壓 鸦鴉 鸭鴨 亚亞 讶訝 阎閻 严嚴 盐鹽 颜顏 阳陽 养養 样樣
痒癢 钥鑰 药藥 爷爺 页頁 业業 医醫 仪儀 遗遺 亿億 忆憶 艺藝 义義 议議 异異 译譯 阴陰 银銀 饮飲
隐隱 樱櫻 鹰鷹 应應 营營 蝇蠅 赢贏 拥擁 佣傭 优優 忧憂 邮郵 犹猶 鱼魚 渔漁 与與 语語 屿嶼 狱獄
誉譽 预預 驭馭 渊淵 园園 员員 圆圓 缘緣 远遠 约約 跃躍 运運 酝醞 杂雜 灾災 载載 攒攢 暂暫 赞贊
凿鑿 枣棗 灶竈 责責 则則 泽澤 贼賊 赠贈 闸閘 诈詐 斋齋 债債 毡氈 盏盞 崭嶄 战戰 张張 涨漲 帐帳
胀脹 赵趙 这這 针針 侦偵 阵陣 镇鎮 争爭 睁睜 证證 郑鄭 织織 职職 执執 纸紙 挚摯 掷擲 质質 钟鐘
终終 种種 肿腫 众眾 昼晝 烛燭 筑築 专專 砖磚 转轉 赚賺 庄莊 装裝 妆妝 壮壯 状狀 浊濁 资資 总總
纵縱 邹鄒 组組 钻鑽 维維 颠顛 诺諾 谴譴 鲍鮑 华華 顿頓 统統 难難 记記 显顯 级級 饺餃 铅鉛 凉涼
机機 红紅 纳納 试試 验驗 请請 计計 订訂 调調 谨謹 谎謊 谋謀 谣謠 谓謂 谐諧 诚誠 诞誕 诸諸 贴貼
账賬 贺賀 贷貸 赌賭 赛賽 绿綠 绝絕 绩績 绪緒 纯純 锅鍋 锋鋒 钓釣 间間 闻聞 阅閱 闭閉 顶頂 颁頒
频頻 额額 饱飽 饿餓 饼餅 馒饅 鹅鵝 厂廠 丛叢 仑侖 伪偽 侠俠 侣侶 俭儉 偿償 储儲 兑兌 冈岡 净淨
凑湊 删刪 别別 剂劑 办辦 劲勁 勋勳 卢盧 却卻 厌厭 厕廁 叠疊 吕呂 吴吳 哑啞 啸嘯 坝壩 坠墜 垄壟
垒壘 堕墮 够夠 夹夾 奥奧 娱娛 婴嬰 宝寶 宠寵 宫宮 尘塵 层層 属屬 岛島 币幣 弹彈 彻徹 径徑 悦悅
惨慘 愤憤 扬揚 抚撫 报報 担擔 择擇 挤擠 撑撐 数數 旷曠 晋晉 晕暈 杨楊 标標 栋棟 档檔 检檢 欧歐
残殘 毕畢 毙斃 浇澆 测測 济濟 浏瀏 涩澀 渐漸 滚滾 滞滯 灿燦 炉爐 烦煩 焕煥 牵牽 狮獅 猪豬 献獻
畅暢 疯瘋 皱皺 础礎 祸禍 窃竊 竞競 简簡 纺紡 缝縫 肠腸 肤膚 脚腳 舰艦 舱艙 艰艱 苏蘇 莲蓮 虏虜
虚虛 蚁蟻 蛮蠻 衬襯 袭襲 视視 览覽 败敗 贩販 贪貪 赖賴 践踐 踪蹤 较較 辅輔 辑輯 辞辭 铃鈴 链鏈
锦錦 键鍵 闷悶 阀閥 隶隸 顽頑 饰飾 鲁魯 萨薩 温溫 饥飢 场場
`;

/** Traditional characters with no single simplified partner listed above, never used in simplified text. */
const TRADITIONAL_ONLY_EXTRA = '麵裡裏髮後臺雲醜鬥幹範複準係繫衝捲穀鬆餘願嶽葉劃豐隻幾遊週誌櫃鬍爲';

function buildSets(): { simplified: Set<string>; traditional: Set<string> } {
  const simplified = new Set<string>();
  const traditional = new Set<string>([...TRADITIONAL_ONLY_EXTRA]);
  for (const token of PAIRS.split(/\s+/)) {
    const chars = [...token];
    if (chars.length !== 2) continue;
    simplified.add(chars[0] as string);
    traditional.add(chars[1] as string);
  }
  return { simplified, traditional };
}

const SETS = buildSets();
/** Characters that occur only in simplified Chinese (as far as this table knows). */
export const SIMPLIFIED_ONLY: ReadonlySet<string> = SETS.simplified;
/** Characters that occur only in traditional Chinese (as far as this table knows). */
export const TRADITIONAL_ONLY: ReadonlySet<string> = SETS.traditional;

/** The raw pairs, for tests that check the table's own consistency. */
export function hanPairs(): [string, string][] {
  return PAIRS.split(/\s+/)
    .filter((t) => t !== '')
    .map((t) => {
      const [s, tr] = [...t];
      return [s ?? '', tr ?? ''];
    });
}
